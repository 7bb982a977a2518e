"""Whole image -> palm detections (box, score, 7 palm keypoints) in the image's pixels.

The steps of MediaPipe's ``mediapipe/modules/palm_detection/palm_detection_cpu.pbtxt``:

1. ``ImageToTensorCalculator``: the image letterboxed (aspect kept, centred, black border, ``keep_aspect_ratio: true``,
   ``border_mode: BORDER_ZERO``) into 192 x 192, RGB in [0, 1] (``output_tensor_float_range { min: 0.0 max: 1.0 }``);
   here with :func:`handpose.data.transforms.box_to_input_affine` / ``warp_to_input``;
2. the network (:class:`handpose.detect.palm.PalmDetectorNet`);
3. ``SsdAnchorsCalculator`` + ``TensorsToDetectionsCalculator`` (:mod:`handpose.detect.anchors`,
   :func:`handpose.detect.decode.decode_detections`, ``min_score_thresh: 0.5``);
4. ``NonMaxSuppressionCalculator`` (weighted, IoU 0.3; :func:`handpose.detect.decode.weighted_nms`);
5. ``DetectionLetterboxRemovalCalculator``: back to the original image, here by inverting the letterbox affine.

Coordinates follow :mod:`handpose.data.transforms` (pixel centres at integer ``(x, y)``); a box edge at ``x0 = -0.5``
is the image's left edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from handpose.data.transforms import apply_affine, box_to_input_affine, full_image_box, invert_affine, warp_to_input
from handpose.detect.anchors import PALM_ANCHORS, ssd_anchors
from handpose.detect.decode import PALM_DECODE, PALM_MIN_SCORE, PALM_NMS_IOU, decode_detections, weighted_nms
from handpose.detect.palm import INPUT_SIZE, PalmDetectorNet, load_palm_weights
from handpose.errors import HandposeError
from handpose.skeleton import HAND21

#: HAND21 (FreiHAND order) index of each of the 7 palm keypoints, in the network's order: wrist (MediaPipe: "center of
#: wrist"), index / middle / ring / little finger MCP, thumb CMC, thumb MCP. MediaPipe documents only 0 (centre of the
#: wrist) and 2 (MCP of the middle finger), in ``palm_detection_detection_to_roi.pbtxt``; the others were matched here
#: to the nearest labelled joint on hgcnn-freihand photos (tests/test_palm_detector.py checks all seven).
PALM_TO_HAND21 = (0, 5, 9, 13, 17, 1, 2)
#: Their names, as in :data:`handpose.skeleton.HAND21`.
PALM_KEYPOINTS = tuple(HAND21.keypoints[i] for i in PALM_TO_HAND21)



@dataclass
class PalmDetection:
    """One detected palm, in pixels of the original image.

    Attributes:
        box: ``(4,)`` float32 ``[x0, y0, x1, y1]`` of the palm (not the whole hand; see
            :func:`handpose.detect.roi.roi_from_palm` for the hand crop).
        score: detection confidence in [0, 1] (sigmoid of the network's logit).
        keypoints: ``(7, 2)`` float32 ``(x, y)`` in :data:`PALM_KEYPOINTS` order.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray = field(repr=False)


def letterbox_input(image: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W, 3)`` uint8 RGB -> ``(size, size, 3)`` float32 in [0, 1] letterboxed, and the ``(2, 3)`` image -> input
    affine (pixel centres). Raises HandposeError for anything but a non-empty ``(H, W, 3)`` array."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise HandposeError(f"palm detector needs an (H, W, 3) RGB image, got shape {image.shape}")
    h, w = image.shape[:2]
    M = box_to_input_affine(full_image_box(w, h), (size, size))
    x = warp_to_input(image.astype(np.uint8, copy=False), M, (size, size)).astype(np.float32) / 255.0
    return x, M


def detections_from_outputs(regressors: np.ndarray, logits: np.ndarray, affine: np.ndarray,
                            min_score: float = PALM_MIN_SCORE, iou_threshold: float = PALM_NMS_IOU,
                            anchors: np.ndarray | None = None, size: int = INPUT_SIZE) -> list[PalmDetection]:
    """Raw network outputs of one image -> palm detections in image pixels (decode, weighted NMS, un-letterbox).

    Works on any runtime's outputs (PyTorch here, or the TFLite interpreter's ``Identity`` / ``Identity_1``).

    Args:
        regressors: ``(2016, 18)`` (or ``(1, 2016, 18)``). logits: ``(2016, 1)`` (or with the batch axis).
        affine: ``(2, 3)`` image -> input affine of :func:`letterbox_input`.
        min_score: keep anchors with ``sigmoid(logit) >= min_score`` (MediaPipe: 0.5).
        iou_threshold: weighted-NMS overlap (MediaPipe: 0.3).
        anchors: ``(2016, 4)``; default :func:`handpose.detect.anchors.ssd_anchors` of the palm options.

    Returns:
        Detections by decreasing score.
    """
    regressors = np.asarray(regressors, np.float32).reshape(-1, 4 + 2 * PALM_DECODE.num_keypoints)
    logits = np.asarray(logits, np.float32).reshape(-1, 1)
    anchors = _palm_anchors() if anchors is None else anchors
    boxes, scores, keypoints = decode_detections(regressors, logits, anchors, min_score, PALM_DECODE)
    boxes, scores, keypoints = weighted_nms(boxes, scores, keypoints, iou_threshold)
    back = invert_affine(affine)
    # normalised input coordinates (0 = left edge) -> input pixel-centre coordinates -> image pixels
    corners = apply_affine(back, boxes.reshape(-1, 2, 2) * size - 0.5).reshape(-1, 4)
    points = apply_affine(back, keypoints * size - 0.5)
    return [PalmDetection(corners[i], float(scores[i]), points[i]) for i in range(len(scores))]


_ANCHORS: np.ndarray | None = None


def _palm_anchors() -> np.ndarray:
    global _ANCHORS
    if _ANCHORS is None:
        _ANCHORS = ssd_anchors(PALM_ANCHORS)
    return _ANCHORS


class PalmDetector:
    """MediaPipe's palm detector on whole images: ``detect(image) -> [PalmDetection]``.

    Building it::

        PalmDetector("full", "../shared/weights/palm_detection_full.tflite")   # MediaPipe's file, imported
        PalmDetector("lite", "palm_lite.pt")        # a state dict saved with torch.save(detector.net.state_dict())
        PalmDetector("full")                        # the converted weights shipped in the package

    Args:
        variant: ``"full"`` or ``"lite"``.
        weights: a ``.tflite`` file of that variant, a converted or state-dict ``.pt`` of :class:`PalmDetectorNet`,
            or a shipped name; None: the shipped ``palm_detection_{variant}``.
        device: torch device for the network.

    Raises:
        HandposeError: unknown variant, or weights missing, unreadable or of another network.
    """

    def __init__(self, variant: str = "full", weights: str | Path | None = None, device: str = "cpu"):
        self.net = PalmDetectorNet(variant)
        self.variant = variant
        load_palm_weights(self.net, weights if weights is not None else f"palm_detection_{variant}")
        self.device = torch.device(device)
        self.net.to(self.device).eval()

    def export_onnx(self, path: str | Path, opset: int = 17) -> float:
        """Write the network to ONNX (input ``image`` ``(B, 3, 192, 192)`` RGB in [0, 1]; outputs ``regressors``
        ``(B, 2016, 18)`` and ``scores`` ``(B, 2016, 1)`` logits; metadata: kind, variant, input size) and return the
        largest difference to PyTorch on a random batch.

        Raises:
            HandposeError: onnx / onnxruntime are not installed.
        """
        from handpose.export import export_network_onnx

        x = torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(0))
        meta = {"kind": "palm_detector", "variant": self.variant, "input_size": [INPUT_SIZE, INPUT_SIZE]}
        return export_network_onnx(self.net.cpu(), path, x, ["regressors", "scores"], meta, opset)

    @torch.no_grad()
    def raw(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The network's outputs on the letterboxed image: ``regressors (2016, 18)``, ``logits (2016, 1)`` and the
        ``(2, 3)`` image -> input affine."""
        x, M = letterbox_input(image)
        t = torch.from_numpy(x).permute(2, 0, 1)[None].to(self.device)
        reg, logit = self.net(t)
        return reg[0].cpu().numpy(), logit[0].cpu().numpy(), M

    def detect(self, image: np.ndarray, min_score: float = PALM_MIN_SCORE,
               iou_threshold: float = PALM_NMS_IOU) -> list[PalmDetection]:
        """Palms in ``image``.

        Args:
            image: ``(H, W, 3)`` uint8 RGB, any size (letterboxed to 192 x 192).
            min_score: lowest kept score (MediaPipe's ``min_score_thresh`` 0.5).
            iou_threshold: weighted-NMS overlap (MediaPipe's ``min_suppression_threshold`` 0.3).

        Returns:
            :class:`PalmDetection` list by decreasing score, in pixels of ``image``.

        Raises:
            HandposeError: ``image`` is not ``(H, W, 3)``.
        """
        reg, logit, M = self.raw(image)
        return detections_from_outputs(reg, logit, M, min_score, iou_threshold)
