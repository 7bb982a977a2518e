"""Whole image -> every hand's keypoints: palm detection, upright hand crops, a keypoint model, back to image pixels.

The top-down path of MediaPipe Hands (``mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.pbtxt`` without
its tracking): ``palm_detection_cpu.pbtxt`` finds palms (:class:`handpose.detect.detector.PalmDetector`),
``palm_detection_detection_to_roi.pbtxt`` turns each into a rotated square around the whole hand
(:func:`handpose.detect.roi.roi_from_palm`: wrist -> middle-finger MCP turned to point up, scale 2.6, shift -0.5),
``hand_landmark_cpu.pbtxt`` warps that square upright into the landmark network (``ImageToTensorCalculator`` with the
rectangle's rotation, border replicated) and ``LandmarkProjectionCalculator`` maps the landmarks back through the
rectangle. Here the keypoint model is any handpose :class:`~handpose.bundle.ModelBundle` (its input size,
normalisation, pad mode and codec), MediaPipe's landmark network by default; the back-mapping is the inverse of the
crop's affine (:func:`rect_to_input_affine`). All crops of one image go through the network in one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from handpose.bundle import ModelBundle
from handpose.data.dataset import normalise
from handpose.data.image import MAX_PIXELS, read_image
from handpose.data.transforms import apply_affine, box_to_input_affine, invert_affine, warp_to_input
from handpose.detect.decode import PALM_MIN_SCORE, PALM_NMS_IOU
from handpose.detect.detector import PalmDetector
from handpose.detect.roi import ROI_SCALE, ROI_SHIFT_Y, RotatedRect, roi_from_palm
from handpose.errors import HandposeError
from handpose.predict import Predictor
from handpose.result import Result


def rect_to_input_affine(rect: RotatedRect, input_size: tuple[int, int]) -> np.ndarray:
    """Image -> model-input affine that turns ``rect`` upright and letterboxes it into the input
    (:func:`handpose.data.transforms.box_to_input_affine` with the rectangle's rotation). Returns ``(2, 3)``."""
    cx, cy = rect.center
    box = (cx - rect.width / 2.0, cy - rect.height / 2.0, rect.width, rect.height)
    return box_to_input_affine(box, input_size, rect.rotation)


def rect_bounds(rect: RotatedRect) -> np.ndarray:
    """``(4,)`` float32 ``[x, y, w, h]``: the axis-aligned box around ``rect``'s corners, pixels."""
    corners = rect.corners()
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], np.float32)


class TopDownPipeline:
    """Every hand in a whole image: ``pipeline(image) -> Result`` with one instance per detected hand.

    Per hand the :class:`~handpose.result.Result` holds keypoints ``(K, 2)`` in original pixels, per-keypoint scores
    (the codec's; MediaPipe's landmark network: its presence probability for every keypoint), ``boxes`` (the crop's
    axis-aligned bounds ``[x, y, w, h]``), ``regions`` (the rotated crop), ``detection_scores`` (the palm
    detector's score) and, when the keypoint model is MediaPipe's landmark network with its own 21 outputs,
    ``presence`` and ``handedness`` (probability of a right hand in the image as given: handpose does not mirror,
    see :mod:`handpose.models.mediapipe_hand`). ``Result.instance_scores`` is ``detection_score * presence``.

    Args:
        detector: a :class:`~handpose.detect.detector.PalmDetector`, or its variant ``"full"`` / ``"lite"`` (the
            shipped weights).
        keypoint_model: a :class:`~handpose.predict.Predictor` (its batch size, flip test, runtime are used), a
            :class:`~handpose.bundle.ModelBundle`, a model name or file (default: MediaPipe's landmark network,
            ``mediapipe_hand_full``). A bottom-up model is refused.
        min_score, iou_threshold: palm detection score threshold and weighted-NMS overlap (MediaPipe: 0.5, 0.3).
        scale, shift_y: hand crop from the palm (``RectTransformationCalculator``: 2.6, -0.5).

    Raises:
        HandposeError: unknown detector variant, missing weights, or a bottom-up keypoint model.
    """

    def __init__(self, detector: PalmDetector | str = "full", keypoint_model=None, min_score: float = PALM_MIN_SCORE,
                 iou_threshold: float = PALM_NMS_IOU, scale: float = ROI_SCALE, shift_y: float = ROI_SHIFT_Y):
        self.detector = detector if isinstance(detector, PalmDetector) else PalmDetector(detector)
        if isinstance(keypoint_model, Predictor):
            self.predictor = keypoint_model
        else:
            model = "mediapipe_hand_full" if keypoint_model is None else keypoint_model
            self.predictor = Predictor(model)
        if self.bundle.codec.kind == "paf":
            raise HandposeError(f"{self.bundle.arch}: a bottom-up model finds its own instances; the top-down "
                                "pipeline needs a single-hand keypoint model")
        self.min_score, self.iou_threshold = min_score, iou_threshold
        self.scale, self.shift_y = scale, shift_y

    @property
    def bundle(self) -> ModelBundle:
        return self.predictor.bundle

    @property
    def skeleton(self):
        return self.bundle.skeleton

    def regions(self, image: np.ndarray) -> tuple[np.ndarray, list[RotatedRect]]:
        """Palm detections of ``image`` -> ``(scores (N,) float32, hand crops)``, by decreasing score.

        Raises:
            HandposeError: ``image`` is not ``(H, W, 3)``.
        """
        dets = self.detector.detect(image, self.min_score, self.iou_threshold)
        rects = [roi_from_palm(d.box, d.keypoints, self.scale, self.shift_y) for d in dets]
        return np.array([d.score for d in dets], np.float32), rects

    def keypoints(self, image: np.ndarray, rects: Sequence[RotatedRect]) -> dict[str, np.ndarray | None]:
        """The keypoint model on the upright crops ``rects`` of ``image`` (in batches of the predictor's
        ``batch_size``: one forward pass for up to 32 hands by default), mapped back to ``image`` pixels.

        Returns:
            ``{"keypoints": (N, K, 2), "scores": (N, K), "presence": (N,) or None, "handedness": (N,) or None}``,
            float32; presence and handedness only on MediaPipe's landmark network.
        """
        b, k, step = self.bundle, len(self.skeleton.keypoints), self.predictor.batch_size
        if not rects:
            none = np.zeros(0, np.float32) if self._landmark_path() else None
            return {"keypoints": np.zeros((0, k, 2), np.float32), "scores": np.zeros((0, k), np.float32),
                    "presence": none, "handedness": none}
        affines = [rect_to_input_affine(r, b.input_size) for r in rects]
        crops = [normalise(warp_to_input(image, M, b.input_size, b.pad_mode), b.mean, b.std) for M in affines]
        parts = [self._forward(torch.stack(crops[i:i + step])) for i in range(0, len(crops), step)]

        def joined(i: int) -> np.ndarray | None:
            return None if parts[0][i] is None else np.concatenate([p[i] for p in parts]).astype(np.float32)

        xy = joined(0)
        kp = np.stack([apply_affine(invert_affine(M), xy[j]) for j, M in enumerate(affines)])
        return {"keypoints": kp, "scores": joined(1), "presence": joined(2), "handedness": joined(3)}

    def _landmark_path(self) -> bool:
        """MediaPipe's landmark network with its own 21 outputs and no flip test: one pass gives keypoints,
        presence and handedness (:meth:`~handpose.models.mediapipe_hand.MediaPipeHandRegression.landmarks`)."""
        from handpose.models.mediapipe_hand import MediaPipeHandRegression

        net = self.bundle.network
        return isinstance(net, MediaPipeHandRegression) and net.adapter is None and not self.predictor.flip_test

    @torch.inference_mode()
    def _forward(self, batch: torch.Tensor) -> tuple[np.ndarray | None, ...]:
        """``(B, 3, H, W)`` normalised crops -> input-pixel keypoints ``(B, K, 2)``, scores ``(B, K)``, presence and
        handedness ``(B,)`` (None off the landmark path)."""
        if self._landmark_path():
            net = self.bundle.network
            lm = net.landmarks(batch)
            xy, _ = self.bundle.codec.decode(net.to_unit(lm.keypoints))  # as forward + codec, from the same pass
            scores = lm.presence[:, None].expand(xy.shape[:2])  # the hand's presence for each of its keypoints
            return xy.numpy(), scores.numpy(), lm.presence.numpy(), lm.handedness.numpy()
        xy, scores = self.bundle.codec.decode(self.predictor.forward(batch), self.predictor.decode)
        return xy.numpy(), scores.numpy(), None, None

    def __call__(self, image: np.ndarray, name: str = "") -> Result:
        """Every detected hand of one RGB ``(H, W, 3)`` uint8 image (an image without hands: ``N = 0``).

        Raises:
            HandposeError: ``image`` is not ``(H, W, 3)``.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            raise HandposeError(f"{name or 'image'}: expected (H, W, 3) RGB, got shape {image.shape}")
        image = image.astype(np.uint8, copy=False)
        det_scores, rects = self.regions(image)
        out = self.keypoints(image, rects)
        boxes = np.array([rect_bounds(r) for r in rects], np.float32).reshape(-1, 4)
        regions = np.array([[*r.center, r.width, r.height, r.rotation] for r in rects], np.float32).reshape(-1, 5)
        return Result(name, out["keypoints"], out["scores"], boxes, (image.shape[1], image.shape[0]), self.skeleton,
                      detection_scores=det_scores, presence=out["presence"], handedness=out["handedness"],
                      regions=regions)

    def predict_paths(self, paths: Sequence[str | Path],
                      on_error: Callable[[Path, HandposeError], None] | None = None, exif_transpose: bool = True,
                      max_pixels: int | None = MAX_PIXELS) -> Iterator[Result]:
        """Every hand of each image file, in order; unreadable files go to ``on_error`` (raised when None).

        Args:
            exif_transpose: turn photos upright by their EXIF tag. max_pixels: refuse larger files unread
                (:func:`handpose.data.image.read_image`).

        Yields:
            A :class:`~handpose.result.Result` per readable file (``N`` = the hands found, possibly 0).
        """
        for p in paths:
            try:
                image = read_image(p, exif_transpose=exif_transpose, max_pixels=max_pixels)
            except HandposeError as e:
                if on_error is None:
                    raise
                on_error(Path(p), e)
                continue
            yield self(image, str(p))
