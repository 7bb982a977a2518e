"""SSD outputs -> detections: box and keypoint decoding against anchors, sigmoid scores, weighted NMS.

Follows MediaPipe's ``TensorsToDetectionsCalculator`` (``mediapipe/calculators/tensor/
tensors_to_detections_calculator.cc``, CPU path) and ``NonMaxSuppressionCalculator`` (``mediapipe/calculators/util/
non_max_suppression_calculator.cc``, ``WEIGHTED`` algorithm), with the palm detector's options from
``mediapipe/modules/palm_detection/palm_detection_cpu.pbtxt`` (:data:`PALM_DECODE`, :data:`PALM_NMS_IOU`).

Every coordinate here is normalised to the model input (0..1, x right, y down; 0 is the input's left / top
edge, 1 its right / bottom edge); mapping to image pixels is the caller's (:mod:`handpose.detect.detector`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DecodeOptions:
    """The ``TensorsToDetectionsCalculatorOptions`` used to decode an SSD's raw outputs.

    Attributes:
        x_scale, y_scale, w_scale, h_scale: raw offsets are divided by these, then multiplied by the anchor size.
        num_keypoints: keypoints after the 4 box values, 2 values (x, y) each.
        xywh: raw box order ``x, y, w, h`` (``reverse_output_order: true``) instead of ``y, x, h, w``.
        sigmoid_score: scores are ``sigmoid(clip(logit, +-score_clipping_thresh))``.
        score_clipping_thresh: logit clipping before the sigmoid.
    """

    x_scale: float
    y_scale: float
    w_scale: float
    h_scale: float
    num_keypoints: int
    xywh: bool = True
    sigmoid_score: bool = True
    score_clipping_thresh: float = 100.0


#: palm_detection_cpu.pbtxt, TensorsToDetectionsCalculator: num_boxes 2016, num_coords 18, box_coord_offset 0,
#: keypoint_coord_offset 4, num_keypoints 7, num_values_per_keypoint 2, sigmoid_score true, score_clipping_thresh
#: 100.0, reverse_output_order true, x/y/w/h_scale 192.0 (and min_score_thresh 0.5, :data:`PALM_MIN_SCORE`).
PALM_DECODE = DecodeOptions(x_scale=192.0, y_scale=192.0, w_scale=192.0, h_scale=192.0, num_keypoints=7)
#: palm_detection_cpu.pbtxt, TensorsToDetectionsCalculator ``min_score_thresh``.
PALM_MIN_SCORE = 0.5
#: palm_detection_cpu.pbtxt, NonMaxSuppressionCalculator: min_suppression_threshold 0.3, overlap_type
#: INTERSECTION_OVER_UNION, algorithm WEIGHTED.
PALM_NMS_IOU = 0.3


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, opts: DecodeOptions = PALM_DECODE
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and keypoints from raw regressors (no exponential on sizes: MediaPipe's
    ``apply_exponential_on_box_size`` is false for the palm detector).

    ``x_center = raw_x / x_scale * anchor_w + anchor_x``, ``w = raw_w / w_scale * anchor_w`` (y, h alike);
    keypoint ``k``: ``x = raw_kx / x_scale * anchor_w + anchor_x``.

    Args:
        raw: ``(N, 4 + 2 * num_keypoints)`` regressors.
        anchors: ``(N, 4)`` ``[x_center, y_center, w, h]`` (:func:`handpose.detect.anchors.ssd_anchors`).

    Returns:
        ``boxes (N, 4)`` ``[xmin, ymin, xmax, ymax]`` and ``keypoints (N, num_keypoints, 2)`` ``(x, y)``, float32,
        normalised to the input.
    """
    raw = np.asarray(raw, np.float32)
    anchors = np.asarray(anchors, np.float32)
    ax, ay, aw, ah = anchors[:, 0:1], anchors[:, 1:2], anchors[:, 2:3], anchors[:, 3:4]
    if opts.xywh:
        x, y, w, h = raw[:, 0:1], raw[:, 1:2], raw[:, 2:3], raw[:, 3:4]
    else:
        y, x, h, w = raw[:, 0:1], raw[:, 1:2], raw[:, 2:3], raw[:, 3:4]
    cx = x / opts.x_scale * aw + ax
    cy = y / opts.y_scale * ah + ay
    w = w / opts.w_scale * aw
    h = h / opts.h_scale * ah
    boxes = np.concatenate([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kp = raw[:, 4:4 + 2 * opts.num_keypoints].reshape(len(raw), opts.num_keypoints, 2)
    if not opts.xywh:
        kp = kp[..., ::-1]
    kx = kp[..., 0] / opts.x_scale * aw + ax
    ky = kp[..., 1] / opts.y_scale * ah + ay
    return boxes.astype(np.float32), np.stack([kx, ky], -1).astype(np.float32)


def scores_from_logits(logits: np.ndarray, opts: DecodeOptions = PALM_DECODE) -> np.ndarray:
    """``sigmoid(clip(logit, -t, t))`` with ``t = score_clipping_thresh`` (or the raw values when
    ``sigmoid_score`` is false). ``(N, 1)`` or ``(N,)`` -> ``(N,)`` float32 in [0, 1]."""
    s = np.asarray(logits, np.float64).reshape(len(logits), -1)[:, 0]
    if not opts.sigmoid_score:
        return s.astype(np.float32)
    s = np.clip(s, -opts.score_clipping_thresh, opts.score_clipping_thresh)
    return (1.0 / (1.0 + np.exp(-s))).astype(np.float32)


def decode_detections(raw: np.ndarray, logits: np.ndarray, anchors: np.ndarray, min_score: float = PALM_MIN_SCORE,
                      opts: DecodeOptions = PALM_DECODE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode, score and keep the anchors with ``score >= min_score`` and a box of non-negative, finite size
    (MediaPipe drops negative or NaN widths and heights, b/171391719).

    Returns:
        ``boxes (M, 4)``, ``scores (M,)``, ``keypoints (M, K, 2)`` in anchor order, normalised to the input.
    """
    scores = scores_from_logits(logits, opts)
    sure = scores >= min_score  # only these are decoded: a few of the 2016 anchors
    boxes, keypoints = decode_boxes(raw[sure], anchors[sure], opts)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (w >= 0) & (h >= 0)  # NaN compares False
    return boxes[keep], scores[sure][keep], keypoints[keep]


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of ``box (4,)`` with each of ``boxes (M, 4)``, all ``[xmin, ymin, xmax, ymax]``;
    0 where there is no overlap or the union has no area. Returns ``(M,)``."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, iou_threshold: float = PALM_NMS_IOU
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression (``NonMaxSuppressionCalculator``, ``algorithm: WEIGHTED``).

    Repeatedly take the highest-scoring remaining detection; every remaining detection whose IoU with it is above
    ``iou_threshold`` (strictly) joins its cluster and leaves the pool. The cluster's box corners and keypoints are
    the score-weighted means of its members; its score is the top member's. Unlike MediaPipe, the top detection
    always belongs to its own cluster (MediaPipe's loop stops early when a zero-area box suppresses nothing).

    Args:
        boxes: ``(M, 4)`` ``[xmin, ymin, xmax, ymax]``. scores: ``(M,)``. keypoints: ``(M, K, 2)``.
        iou_threshold: the overlap above which two detections merge (0.3 for palms).

    Returns:
        ``boxes (D, 4)``, ``scores (D,)``, ``keypoints (D, K, 2)``, by decreasing score.
    """
    boxes = np.asarray(boxes, np.float32)
    scores = np.asarray(scores, np.float32)
    keypoints = np.asarray(keypoints, np.float32)
    order = np.argsort(-scores, kind="stable")
    out_b, out_s, out_k = [], [], []
    while order.size:
        top = order[0]
        iou = box_iou(boxes[top], boxes[order])
        member = iou > iou_threshold
        member[0] = True
        idx = order[member]
        w = scores[idx].astype(np.float64)
        out_b.append((boxes[idx] * w[:, None]).sum(0) / w.sum())
        out_k.append((keypoints[idx] * w[:, None, None]).sum(0) / w.sum())
        out_s.append(scores[top])
        order = order[~member]
    k = keypoints.shape[1] if keypoints.ndim == 3 else 0
    if not out_s:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, k, 2), np.float32)
    return (np.asarray(out_b, np.float32), np.asarray(out_s, np.float32), np.asarray(out_k, np.float32))
