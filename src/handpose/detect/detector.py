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

``fit_input=True`` (handpose's option, not MediaPipe's): the letterbox keeps the 192-px long side but shrinks the
other side to the smallest multiple of 32 that holds the image (a 640 x 480 photo: 192 x 160 input instead of
192 x 192), with the anchor grids and decoding scales of that size. The network is fully convolutional; it sees the
same pixels at the same scale with less black border, at 5/6 of the cost for a 4:3 image (2/3 for 16:9). It learnt
with the border, though: the scores and boxes move a little (see :class:`handpose.detect.topdown.TopDownPipeline`).

Coordinates follow :mod:`handpose.data.transforms` (pixel centres at integer ``(x, y)``); a box edge at ``x0 = -0.5``
is the image's left edge.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cache
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


#: Input sides of a fitted letterbox are multiples of this: the network halves its input five times (192 -> 6 px)
#: and its feature pyramid upsamples the 6 px map back twice, so both must come out whole.
FIT_MULTIPLE = 32


def fitted_input_size(width: int, height: int, size: int = INPUT_SIZE) -> tuple[int, int]:
    """``(input width, input height)`` of a fitted letterbox for a ``width`` x ``height`` image: the longer side
    ``size``, the other the smallest multiple of :data:`FIT_MULTIPLE` that holds the image at that scale (640 x 480 ->
    192 x 160; a square image -> ``size`` x ``size``)."""
    scale = size / max(width, height)

    def side(n: int) -> int:
        return min(size, max(FIT_MULTIPLE, FIT_MULTIPLE * math.ceil(n * scale / FIT_MULTIPLE - 1e-6)))

    return (size, side(height)) if width >= height else (side(width), size)


def check_input_side(side: int) -> int:
    """``side`` if it is a palm detector input side (a multiple of :data:`FIT_MULTIPLE` from 64), else
    HandposeError."""
    if int(side) != side or side < 2 * FIT_MULTIPLE or side % FIT_MULTIPLE:
        raise HandposeError(f"palm detector input side must be a multiple of {FIT_MULTIPLE} from "
                            f"{2 * FIT_MULTIPLE}, got {side}")
    return int(side)


def _as_size(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def letterbox_input(image: np.ndarray, size: int | tuple[int, int] = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W, 3)`` uint8 RGB -> ``(height, width, 3)`` float32 in [0, 1] letterboxed (aspect kept, centred) into
    ``size`` (an int: square; or ``(width, height)``), and the ``(2, 3)`` image -> input affine (pixel centres).
    Raises HandposeError for anything but a non-empty ``(H, W, 3)`` array."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise HandposeError(f"palm detector needs an (H, W, 3) RGB image, got shape {image.shape}")
    h, w = image.shape[:2]
    size = _as_size(size)
    M = box_to_input_affine(full_image_box(w, h), size)
    x = warp_to_input(image.astype(np.uint8, copy=False), M, size).astype(np.float32) / 255.0
    return x, M


def detections_from_outputs(regressors: np.ndarray, logits: np.ndarray, affine: np.ndarray,
                            min_score: float = PALM_MIN_SCORE, iou_threshold: float = PALM_NMS_IOU,
                            anchors: np.ndarray | None = None,
                            size: int | tuple[int, int] = INPUT_SIZE) -> list[PalmDetection]:
    """Raw network outputs of one image -> palm detections in image pixels (decode, weighted NMS, un-letterbox).

    Works on any runtime's outputs (PyTorch here, or the TFLite interpreter's ``Identity`` / ``Identity_1``).

    Args:
        regressors: ``(N, 18)`` (or ``(1, N, 18)``); N = 2016 at 192 x 192. logits: ``(N, 1)`` (or with the batch
            axis).
        affine: ``(2, 3)`` image -> input affine of :func:`letterbox_input`.
        min_score: keep anchors with ``sigmoid(logit) >= min_score`` (MediaPipe: 0.5).
        iou_threshold: weighted-NMS overlap (MediaPipe: 0.3).
        anchors: ``(N, 4)``; default :func:`palm_anchors` of ``size``.
        size: the network input the outputs are of: an int (square) or ``(width, height)``.

    Returns:
        Detections by decreasing score.
    """
    size = _as_size(size)
    regressors = np.asarray(regressors, np.float32).reshape(-1, 4 + 2 * PALM_DECODE.num_keypoints)
    logits = np.asarray(logits, np.float32).reshape(-1, 1)
    anchors = palm_anchors(*size) if anchors is None else anchors
    # the regressors are in input pixels along each axis (MediaPipe's x/y/w/h_scale: its square 192)
    opts = dataclasses.replace(PALM_DECODE, x_scale=float(size[0]), w_scale=float(size[0]), y_scale=float(size[1]),
                               h_scale=float(size[1]))
    boxes, scores, keypoints = decode_detections(regressors, logits, anchors, min_score, opts)
    boxes, scores, keypoints = weighted_nms(boxes, scores, keypoints, iou_threshold)
    back = invert_affine(affine)
    # normalised input coordinates (0 = left edge) -> input pixel-centre coordinates -> image pixels
    scale = np.array(size, np.float32)
    corners = apply_affine(back, boxes.reshape(-1, 2, 2) * scale - 0.5).reshape(-1, 4)
    points = apply_affine(back, keypoints * scale - 0.5)
    return [PalmDetection(corners[i], float(scores[i]), points[i]) for i in range(len(scores))]


@cache
def palm_anchors(width: int = INPUT_SIZE, height: int = INPUT_SIZE) -> np.ndarray:
    """The palm detector's anchors (:data:`handpose.detect.anchors.PALM_ANCHORS`) for a ``width`` x ``height``
    input: ``(N, 4)``, N = 2016 at 192 x 192 (cached; do not modify)."""
    return ssd_anchors(dataclasses.replace(PALM_ANCHORS, input_size_width=int(width), input_size_height=int(height)))


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
        fit_input: letterbox into :func:`fitted_input_size` (less border, faster; see the module doc) instead of
            a square.
        input_side: the letterbox's side (its longer side with ``fit_input``), a multiple of 32 from 64; MediaPipe's
            is 192. Smaller is faster and misses more small hands (see docs/benchmarks.md: at 160 about as many
            hands found as at 192, at 128 far fewer).

    Raises:
        HandposeError: unknown variant, weights missing, unreadable or of another network, or a bad
            ``input_side``.
    """

    def __init__(self, variant: str = "full", weights: str | Path | None = None, device: str = "cpu",
                 fit_input: bool = False, input_side: int = INPUT_SIZE):
        self.net = PalmDetectorNet(variant)
        self.variant = variant
        self.fit_input, self.input_side = fit_input, check_input_side(input_side)
        load_palm_weights(self.net, weights if weights is not None else f"palm_detection_{variant}")
        self.device = torch.device(device)
        self.net.to(self.device).eval()

    def export_onnx(self, path: str | Path, opset: int = 17) -> float:
        """Write the network to ONNX (input ``image`` ``(B, 3, H, W)`` RGB in [0, 1], H and W dynamic, each a
        multiple of 32: MediaPipe's 192 x 192, a fitted size, another ``input_side``; outputs ``regressors``
        ``(B, N, 18)`` and ``scores`` ``(B, N, 1)`` logits, N = 2016 at 192 x 192; metadata: kind, variant, input
        size 192 x 192, ``"spatial": "dynamic"``) and return the largest difference to PyTorch on a random batch.

        Raises:
            HandposeError: onnx / onnxruntime are not installed.
        """
        from handpose.export import export_network_onnx

        x = torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(0))
        meta = {"kind": "palm_detector", "variant": self.variant, "input_size": [INPUT_SIZE, INPUT_SIZE],
                "spatial": "dynamic"}
        return export_network_onnx(self.net.cpu(), path, x, ["regressors", "scores"], meta, opset, spatial=True)

    def input_size(self, image: np.ndarray) -> tuple[int, int]:
        """``(width, height)`` of the network input for ``image``: ``input_side`` squared, or
        :func:`fitted_input_size` with ``fit_input``."""
        side = self.input_side
        if self.fit_input and np.ndim(image) == 3:
            return fitted_input_size(image.shape[1], image.shape[0], side)
        return side, side

    @torch.no_grad()
    def raw(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The network's outputs on the letterboxed image: ``regressors (N, 18)``, ``logits (N, 1)`` (N = 2016 at
        192 x 192) and the ``(2, 3)`` image -> input affine."""
        x, M = letterbox_input(image, self.input_size(image))
        t = torch.from_numpy(x).permute(2, 0, 1)[None].to(self.device)
        reg, logit = self.net(t)
        return reg[0].cpu().numpy(), logit[0].cpu().numpy(), M

    def detect(self, image: np.ndarray, min_score: float = PALM_MIN_SCORE,
               iou_threshold: float = PALM_NMS_IOU) -> list[PalmDetection]:
        """Palms in ``image``.

        Args:
            image: ``(H, W, 3)`` uint8 RGB, any size (letterboxed to 192 x 192, or fitted: :meth:`input_size`).
            min_score: lowest kept score (MediaPipe's ``min_score_thresh`` 0.5).
            iou_threshold: weighted-NMS overlap (MediaPipe's ``min_suppression_threshold`` 0.3).

        Returns:
            :class:`PalmDetection` list by decreasing score, in pixels of ``image``.

        Raises:
            HandposeError: ``image`` is not ``(H, W, 3)``.
        """
        reg, logit, M = self.raw(image)
        return detections_from_outputs(reg, logit, M, min_score, iou_threshold, size=self.input_size(image))
