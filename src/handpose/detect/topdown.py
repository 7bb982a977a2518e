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

Both networks run in PyTorch (``backend="torch"``) or onnxruntime (``backend="onnxruntime"``): then each is exported
once to ONNX (:func:`palm_onnx_file`, :func:`keypoint_onnx_file`) into a cache folder, keyed by a hash of its
weights and metadata, or given as ``.onnx`` files; the crop, decoding and back-mapping are the same code on either
backend.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from handpose.atomic import temp_path
from handpose.bundle import ModelBundle
from handpose.data.dataset import normalise
from handpose.data.image import MAX_PIXELS, read_image
from handpose.data.transforms import apply_affine, box_to_input_affine, invert_affine, warp_to_input
from handpose.detect.decode import PALM_MIN_SCORE, PALM_NMS_IOU
from handpose.detect.detector import PalmDetector, check_input_side, letterbox_input
from handpose.detect.palm import INPUT_SIZE
from handpose.detect.roi import ROI_SCALE, ROI_SHIFT_Y, RotatedRect, roi_from_palm
from handpose.detect.tiles import detect_tiled, tile_boxes
from handpose.errors import HandposeError
from handpose.predict import Predictor, is_landmark_network
from handpose.result import Result
from handpose.runtime import torch_threads

#: The pipeline's backends: which runtime runs the palm detector and the keypoint network.
BACKENDS = ("torch", "onnxruntime")
#: ``handpose predict`` without ``--detect`` / ``--crop``: an image whose longer side is at most this many pixels is
#: taken as one hand crop (the hand sets' crops: FreiHAND 224, hgcnn-freihand 256, Sign Language Digits 100,
#: 11k Hands 180 as shipped in ../shared/data, HaGRID crops a median 100 px), a larger one as a photo to find hands in.
CROP_MAX_SIDE = 320


def rgb_image(image, what: str) -> np.ndarray:
    """``image`` as an ``(H, W, 3)`` uint8 array (what the pipeline and the tracker take).

    Raises:
        HandposeError: another shape or an empty image, named by ``what``.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise HandposeError(f"{what}: expected (H, W, 3) RGB, got shape {image.shape}")
    return image.astype(np.uint8, copy=False)


def is_hand_crop(width: int, height: int, max_side: int = CROP_MAX_SIDE) -> bool:
    """The rule ``handpose predict`` applies to an image when neither ``--detect`` nor ``--crop`` is given: a
    ``width`` x ``height`` image is one hand crop when its longer side is at most ``max_side`` pixels
    (:data:`CROP_MAX_SIDE`), else a photo whose hands the palm detector finds."""
    return max(width, height) <= max_side


def default_cache_dir() -> Path:
    """Where exported ONNX files are kept: ``$HANDPOSE_CACHE/onnx`` (default ``~/.cache/handpose/onnx``)."""
    return Path(os.environ.get("HANDPOSE_CACHE", "~/.cache/handpose")).expanduser() / "onnx"


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


def _weights_key(net: torch.nn.Module, metadata: dict) -> str:
    """16 hex digits of SHA-256 over ``metadata`` (JSON) and every tensor of ``net``'s state dict: the cache key of
    an exported file (other weights, or the same weights with other preprocessing, give another file)."""
    h = hashlib.sha256(json.dumps(metadata, sort_keys=True, default=str).encode())
    for name, value in net.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _cached(path: Path, export: Callable[[Path], object]) -> Path:
    """``path``, written by ``export(temporary path)`` and renamed into place unless it exists already (a killed
    export leaves no partial file under the cached name)."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        export(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class _PReLUAsLinearReLU(torch.nn.Module):
    """``PReLU`` written as ``a * x + (1 - a) * relu(x)`` with each per-channel product a depthwise 1x1 convolution:
    the same function for any slope ``a`` (exact in real arithmetic; float32 outputs of the palm detector within
    1.2e-4 of ``nn.PReLU``'s, on regressors of up to a few hundred px), which onnxruntime runs faster than its
    ``PRelu`` operator (per-channel broadcasting and no NCHWc layout: a reorder before and after each; convolutions
    keep the NCHWc layout and take the sum in). Measured here at 1 thread, interleaved runs, median ms:
    palm_detection_full 58.4 (PRelu) -> 46.8 (``relu(x) - a * relu(-x)``, session 5, under load); session 7, idle
    core, 192 x 192: lite 18.6 -> 16.7 and full 17.0 -> 14.9 with ``a * x + (1 - a) * relu(x)`` as broadcast
    products; lite at 192 x 160: 13.85 -> 12.79 with the products as convolutions (this form)."""

    def __init__(self, prelu: torch.nn.PReLU):
        super().__init__()
        a = prelu.weight.detach().clone()
        c = a.numel()
        self.slope = torch.nn.Conv2d(c, c, 1, groups=c, bias=False)
        self.rest = torch.nn.Conv2d(c, c, 1, groups=c, bias=False)
        self.slope.weight.data = a.view(c, 1, 1, 1)
        self.rest.weight.data = (1.0 - a).view(c, 1, 1, 1)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.slope(x) + self.rest(torch.relu(x))


def _prelu_for_onnx(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` with every ``nn.PReLU`` replaced by :class:`_PReLUAsLinearReLU` (for export only)."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.PReLU):
                setattr(module, name, _PReLUAsLinearReLU(child))
    return net


def palm_onnx_file(detector: PalmDetector, folder: str | Path | None = None) -> Path:
    """The palm detector as ``{folder}/palm_detection_{variant}-{key}.onnx`` (``key``: a hash of its weights),
    exported by :meth:`PalmDetector.export_onnx` (its PReLUs as :class:`_PReLUAsLinearReLU`) unless that file exists
    (default folder :func:`default_cache_dir`).

    Raises:
        HandposeError: onnx / onnxruntime are not installed.
    """
    folder = Path(folder) if folder is not None else default_cache_dir()
    from handpose.export import GRAPH_VERSION

    key = _weights_key(detector.net, {"kind": "palm_detector", "variant": detector.variant, "prelu": "linear-relu-conv",
                                      "graph": GRAPH_VERSION, "spatial": "dynamic"})
    fast = copy.copy(detector)  # the same detector and metadata, the network rewritten for onnxruntime
    fast.net = _prelu_for_onnx(detector.net)
    return _cached(folder / f"palm_detection_{detector.variant}-{key}.onnx", fast.export_onnx)


def keypoint_onnx_file(bundle: ModelBundle, folder: str | Path | None = None) -> Path:
    """The keypoint model as ``{folder}/{arch}-{key}.onnx`` (``key``: a hash of its weights and metadata), exported
    by :func:`handpose.export.export_onnx` unless that file exists (default folder :func:`default_cache_dir`).

    Raises:
        HandposeError: onnx / onnxruntime are not installed.
    """
    from handpose.export import GRAPH_VERSION, export_onnx

    folder = Path(folder) if folder is not None else default_cache_dir()
    meta = {k: v for k, v in bundle.to_dict().items() if k != "state_dict"}
    meta["landmark_outputs"] = is_landmark_network(bundle)
    meta["graph"] = GRAPH_VERSION
    return _cached(folder / f"{bundle.arch}-{_weights_key(bundle.network, meta)}.onnx",
                   lambda p: export_onnx(bundle, p))


class OnnxPalmDetector(PalmDetector):
    """:class:`~handpose.detect.detector.PalmDetector` run by onnxruntime from a file written by
    :meth:`PalmDetector.export_onnx` (or ``handpose export --model palm_detection_full``): the same letterbox,
    decoding and NMS, only the network differs.

    Args:
        path: the ``.onnx`` file. threads, spin: onnxruntime intra-op threads (0: its default, one per core) and
            whether they spin between runs (:class:`handpose.export.OnnxNetwork`).
        fit_input, input_side: as :class:`~handpose.detect.detector.PalmDetector`'s; only for a file exported
            with dynamic height and width (metadata ``"spatial": "dynamic"``, this version's exports); an older
            file runs 192 x 192 only (HandposeError otherwise).

    Raises:
        HandposeError: onnxruntime missing, a file it cannot load, a file that is not a 192 x 192 palm detector
            (by its handpose metadata), a bad ``input_side``, or fit_input / another side for an older file.
    """

    def __init__(self, path: str | Path, threads: int = 0, fit_input: bool = False,
                 input_side: int = INPUT_SIZE, spin: bool = True):  # no PyTorch network
        from handpose.export import OnnxNetwork

        self.path = Path(path)
        if not self.path.is_file():
            raise HandposeError(f"{self.path}: palm detector ONNX file not found")
        self.runner = OnnxNetwork(self.path, threads, spin)
        meta = self.runner.metadata()
        if meta.get("kind") != "palm_detector" or list(meta.get("input_size", [])) != [INPUT_SIZE, INPUT_SIZE]:
            raise HandposeError(f"{self.path}: not a {INPUT_SIZE} x {INPUT_SIZE} palm detector (handpose metadata "
                                f"kind {meta.get('kind')!r}, input_size {meta.get('input_size')}); write one with "
                                "`handpose export --model palm_detection_full`")
        self.variant = str(meta.get("variant", ""))
        self.fit_input, self.input_side = fit_input, check_input_side(input_side)
        if meta.get("spatial") != "dynamic" and (fit_input or input_side != INPUT_SIZE):
            raise HandposeError(f"{self.path}: exported for 192 x 192 input only; export it again (handpose export "
                                "--model palm_detection_full) for fit_input or another input side")
        self.net = None
        self.device = torch.device("cpu")

    def export_onnx(self, path: str | Path, opset: int = 17) -> float:
        """Raises HandposeError: the network is already an ONNX file (copy :attr:`path` instead)."""
        raise HandposeError(f"{self.path}: this palm detector is already ONNX; copy the file")

    def raw(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`PalmDetector.raw`: ``regressors (N, 18)``, ``logits (N, 1)`` and the ``(2, 3)`` image -> input
        affine."""
        x, M = letterbox_input(image, self.input_size(image))
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        reg, logit = self.runner.session.run(None, {self.runner.input_name: x})
        return reg[0], logit[0], M


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
        backend: ``"torch"`` or ``"onnxruntime"``: with ``"onnxruntime"`` both networks are exported once into
            ``onnx_dir`` (:func:`palm_onnx_file`, :func:`keypoint_onnx_file`) and run from there. A ``detector``
            or ``keypoint_model`` given as an ``.onnx`` file (or a Predictor of one) is run by onnxruntime on either
            backend.
        onnx_dir: the folder of the exported files (default :func:`default_cache_dir`).
        threads: onnxruntime intra-op threads per network (0: onnxruntime's default, one per core). The two
            sessions take turns, so their idle threads do not spin (:class:`handpose.export.OnnxNetwork`'s
            ``spin``); a detector or Predictor given as an object keeps its own session.
        tiles: palm detection also on a ``tiles x tiles`` grid of overlapping tiles (:mod:`handpose.detect.tiles`:
            small hands; ``1 + tiles ** 2`` detector passes); 1: the whole image only, as MediaPipe.
        fit_input: the detector built here from a variant name or file letterboxes into a fitted size
            (:func:`handpose.detect.detector.fitted_input_size`: 192 x 160 for a 640 x 480 photo) instead of
            MediaPipe's 192 x 192: 5/6 of the detector's cost on 4:3 photos, and not quite the same palms (the
            network learnt with the letterbox's border: on the 55 COCO photos of the shared data, 36 palms at
            score >= 0.5 instead of 31 with the full detector; boxes moved 2 px median). A detector given as an
            object keeps its own settings.
        detector_side: the detector's input side (the longer one with ``fit_input``), a multiple of 32 from 64
            (MediaPipe: 192); smaller is faster and misses more small hands.

    Raises:
        HandposeError: unknown detector variant or backend, missing weights, an ONNX file that is not a palm
            detector / keypoint model, onnxruntime missing for the onnxruntime backend, or a bottom-up keypoint
            model.
    """

    def __init__(self, detector: PalmDetector | str | Path = "full", keypoint_model=None,
                 min_score: float = PALM_MIN_SCORE, iou_threshold: float = PALM_NMS_IOU, scale: float = ROI_SCALE,
                 shift_y: float = ROI_SHIFT_Y, backend: str = "torch", onnx_dir: str | Path | None = None,
                 threads: int = 0, tiles: int = 1, fit_input: bool = False, detector_side: int = INPUT_SIZE):
        if backend not in BACKENDS:
            raise HandposeError(f"top-down pipeline: backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        if isinstance(detector, PalmDetector):
            self.detector = detector
        elif str(detector).lower().endswith(".onnx"):
            self.detector = OnnxPalmDetector(detector, threads, fit_input, detector_side, spin=False)
        else:
            self.detector = PalmDetector(str(detector), fit_input=fit_input, input_side=detector_side)
        if isinstance(keypoint_model, Predictor):
            self.predictor = keypoint_model
        else:
            model = "mediapipe_hand_full" if keypoint_model is None else keypoint_model
            if str(model).lower().endswith(".onnx"):
                from handpose.export import load_onnx

                model = load_onnx(model, threads, spin=False)
            self.predictor = Predictor(model)
        if self.bundle.codec.kind == "paf":
            raise HandposeError(f"{self.bundle.arch}: a bottom-up model finds its own instances; the top-down "
                                "pipeline needs a single-hand keypoint model")
        if backend == "onnxruntime":
            self._to_onnx(onnx_dir, threads)
        self.min_score, self.iou_threshold = min_score, iou_threshold
        self.scale, self.shift_y = scale, shift_y
        tile_boxes(64, 64, tiles)  # a bad grid fails here, not at the first photo
        self.tiles = tiles

    def _to_onnx(self, folder: str | Path | None, threads: int) -> None:
        """Swap each PyTorch network for its exported ONNX file (exported into ``folder`` when not cached yet)."""
        from handpose.export import OnnxNetwork, load_onnx

        if not isinstance(self.detector, OnnxPalmDetector):
            self.detector = OnnxPalmDetector(palm_onnx_file(self.detector, folder), threads,
                                             self.detector.fit_input, self.detector.input_side, spin=False)
        if not isinstance(self.bundle.network, OnnxNetwork):
            path = keypoint_onnx_file(self.bundle, folder)
            p = self.predictor
            self.predictor = Predictor(load_onnx(path, threads, spin=False), p.batch_size, p.decode, p.flip_test)

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
        dets = detect_tiled(self.detector, image, self.tiles, min_score=self.min_score,
                            iou_threshold=self.iou_threshold)
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
            none = np.zeros(0, np.float32) if self.predictor.landmark_path() else None
            return {"keypoints": np.zeros((0, k, 2), np.float32), "scores": np.zeros((0, k), np.float32),
                    "presence": none, "handedness": none}
        affines = [rect_to_input_affine(r, b.input_size) for r in rects]
        # onnxruntime runs the network: torch's glue on one thread, so that the two thread pools do not compete
        with torch_threads(None if isinstance(b.network, torch.nn.Module) else 1):
            crops = [normalise(warp_to_input(image, M, b.input_size, b.pad_mode), b.mean, b.std) for M in affines]
            parts = [self.predictor.keypoints(torch.stack(crops[i:i + step])) for i in range(0, len(crops), step)]

        def joined(i: int) -> np.ndarray | None:
            return None if parts[0][i] is None else np.concatenate([p[i] for p in parts]).astype(np.float32)

        xy = joined(0)
        kp = np.stack([apply_affine(invert_affine(M), xy[j]) for j, M in enumerate(affines)])
        return {"keypoints": kp, "scores": joined(1), "presence": joined(2), "handedness": joined(3)}

    def __call__(self, image: np.ndarray, name: str = "") -> Result:
        """Every detected hand of one RGB ``(H, W, 3)`` uint8 image (an image without hands: ``N = 0``).

        Raises:
            HandposeError: ``image`` is not ``(H, W, 3)``.
        """
        image = rgb_image(image, name or "image")
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
