"""Image / folder / glob -> :class:`~handpose.result.Result`, in batches, reporting bad files without stopping."""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from handpose.bundle import ModelBundle, load_model
from handpose.data.dataset import normalise
from handpose.data.image import IMAGE_SUFFIXES, MAX_PIXELS, read_image
from handpose.data.transforms import (
    apply_affine,
    invert_affine,
    region_affine,
    warp_to_input,
)
from handpose.errors import HandposeError
from handpose.result import Result
from handpose.runtime import torch_threads

#: ``hand`` values of :class:`Predictor`: which hand each image shows (see its docstring).
HANDS = ("right", "left", "auto")
#: The network that tells left from right for ``hand="auto"`` (its handedness output).
HANDEDNESS_MODEL = "mediapipe_hand_full"

#: Outputs of MediaPipe's landmark network as exported for onnxruntime: keypoints ``(B, 21, 2)`` in the regression
#: codec's ``[-1, 1]`` units, then presence and handedness ``(B,)``.
LANDMARK_OUTPUTS = ("output", "presence", "handedness")


def is_landmark_network(bundle: ModelBundle) -> bool:
    """MediaPipe's landmark network (imported or fine-tuned) with its own 21 outputs (no adapter to another keypoint
    set), in PyTorch: one pass gives keypoints, presence and handedness."""
    from handpose.models.mediapipe_hand import MediaPipeHandRegression

    net = bundle.network
    return isinstance(net, MediaPipeHandRegression) and net.adapter is None


def expand_inputs(items: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files, folders (their image files, sorted) and glob patterns -> image paths.

    Returns:
        ``(paths, problems)``: problems are ``(item, message)`` for inputs that match nothing, and in folders for
        image names whose link is broken and for video files (a video is read only when named itself).
    """
    from handpose.video import VIDEO_SUFFIXES

    paths: list[Path] = []
    problems: list[tuple[str, str]] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found, skipped = [], len(problems)
            for q in sorted(p.iterdir()):
                suffix = q.suffix.lower()
                if suffix in IMAGE_SUFFIXES and q.is_file():
                    found.append(q)
                elif suffix in IMAGE_SUFFIXES and q.is_symlink():
                    problems.append((str(q), f"{q}: broken link (its target {q.readlink()} does not exist)"))
                elif suffix in VIDEO_SUFFIXES:
                    problems.append((str(q), f"{q}: a video inside a folder is not read; give the video itself"))
            if not found and len(problems) == skipped:
                problems.append((str(item), f"{item}: folder has no image files ({', '.join(IMAGE_SUFFIXES)})"))
            paths.extend(found)
        elif p.is_file():
            paths.append(p)
        elif any(c in str(item) for c in "*?["):
            found = sorted(Path(q) for q in glob.glob(str(item), recursive=True) if Path(q).is_file())
            if not found:
                problems.append((str(item), f"{item}: pattern matches no files"))
            paths.extend(found)
        else:
            problems.append((str(item), f"{item}: no such file or folder"))
    return paths, problems


def overlay_names(files: Sequence[str | Path], folder: str | Path, suffix: str = ".png",
                  avoid: Iterable[str | Path] = ()) -> list[Path]:
    """One output file in ``folder`` per input file, distinct for distinct inputs and never one of ``avoid``.

    Names grow only where needed: ``photo.png``; when two inputs share a stem, their suffix is added
    (``photo_jpg.png``, ``photo_png.png``); when they still clash, their parent folders (``a_photo_jpg.png``);
    a name that would be an input file (``avoid``, e.g. drawing ``dir/scan.png`` into ``dir``) gets ``_overlay``.

    Returns:
        Output paths, in the order of ``files``; the same input file given twice maps to the same output.
    """
    folder = Path(folder)
    avoid_set = {Path(a).resolve() for a in avoid}
    real = [Path(f"camera{f}") if str(f).isdigit() else Path(f).resolve() for f in files]

    def candidate(f: Path, level: int) -> str:
        ext = f.suffix.lower().lstrip(".")
        if level == 0:
            return f.stem
        if level == 1:
            return f"{f.stem}_{ext}" if ext else f.stem
        parents = [q for q in f.parent.parts if q not in ("/", "\\")]
        return "_".join([*parents[-(level - 1):], f.stem, *([ext] if ext else [])])

    depth = max((len(f.parts) for f in real), default=0) + 1
    levels = {f: 0 for f in real}
    while True:
        names = {f: candidate(f, levels[f]) for f in levels}
        owners: dict[str, list[Path]] = {}
        for f, n in names.items():
            owners.setdefault(n, []).append(f)
        clashes = [f for group in owners.values() if len(group) > 1 for f in group if levels[f] < depth]
        if not clashes:
            break
        for f in clashes:
            levels[f] += 1
    out = {}
    for f, n in names.items():
        target = folder / f"{n}{suffix}"
        while target.resolve() in avoid_set:
            n += "_overlay"
            target = folder / f"{n}{suffix}"
        out[f] = target
    return [out[f] for f in real]


class Predictor:
    """Runs a :class:`ModelBundle` on images.

    Args:
        model: a bundle, a bundled model name or a file (default: the bundled default model).
        batch_size: images per forward pass.
        decode: heatmap decoding method (default: the model's).
        flip_test: also run the mirrored image and average the two outputs (Simple Baselines' flip test; the
            Skeleton's flip permutation re-indexes the mirrored output). Twice the compute.
        channels_last: run a PyTorch network in the channels-last memory format (often faster on CPUs).
        hand: which hand the images show (the hand tutorial's way to run left hands through a model trained on
            right hands): an image whose hand is not ``model_hand`` is mirrored into the network and its
            keypoints are mirrored back (the flip test's un-mirroring: heatmaps flipped, regression x negated,
            re-indexed by the Skeleton's ``flip_perm``). ``"left"`` / ``"right"``: given; ``"auto"``: MediaPipe's
            landmark network (:data:`HANDEDNESS_MODEL`, shipped) decides on each region as given (left when its
            probability of a right hand is < 0.5; it was trained on upright hand crops); None: nothing mirrored.
            Per-image hands given to :meth:`predict_arrays` / :meth:`predict_paths` override it.
        model_hand: the hand the model was trained on, ``"right"`` or ``"left"`` (the bundled model's
            hgcnn-freihand photos are left hands; see ``benchmarks/bench_mirror.py``).

    Raises:
        HandposeError: ``hand`` not one of :data:`HANDS` or None, ``model_hand`` not right or left.
    """

    def __init__(self, model: ModelBundle | str | Path | None = None, batch_size: int = 32, decode: str | None = None,
                 flip_test: bool = False, channels_last: bool = False, hand: str | None = None,
                 model_hand: str = "right"):
        self.bundle = model if isinstance(model, ModelBundle) else load_model(model)
        self.bundle.network.eval()
        self.channels_last = channels_last and isinstance(self.bundle.network, torch.nn.Module)
        # onnxruntime runs the network: torch only does small glue work, on one thread (see torch_threads)
        self._glue_threads = None if isinstance(self.bundle.network, torch.nn.Module) else 1
        if self.channels_last:
            self.bundle.network.to(memory_format=torch.channels_last)
        self.batch_size = max(1, int(batch_size))
        self.decode = decode
        self.flip_test = flip_test
        self.hand = _check_hand(hand, "hand")
        self.model_hand = _check_hand(model_hand, "model_hand")
        if self.model_hand not in ("right", "left"):
            raise HandposeError(f"model_hand must be right or left (got {model_hand!r})")
        self._handedness_bundle: ModelBundle | None = None

    def forward(self, batch: torch.Tensor, mirror: torch.Tensor | None = None) -> torch.Tensor:
        """Network output for a normalised ``(B, 3, H, W)`` batch, averaged with the mirrored pass when
        ``flip_test`` is on (heatmaps mirrored back; regression x negated, in [-1, 1] units).

        Args:
            mirror: ``(B,)`` bool, images to mirror into the network (left hands for a right-hand model); their
                outputs are mirrored back (:meth:`unmirror`), so every output is in the frame of the image as given.
        """
        if mirror is not None and bool(mirror.any()):
            flip = mirror.view(-1, 1, 1, 1)
            out = self.forward(torch.where(flip, batch.flip(-1), batch))
            return torch.where(mirror.view(-1, *[1] * (out.ndim - 1)), self.unmirror(out), out)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        out = self.bundle.network(batch)
        if not self.flip_test:
            return out
        return (out + self.unmirror(self.bundle.network(batch.flip(-1)))) / 2

    def unmirror(self, out: torch.Tensor) -> torch.Tensor:
        """The network's output on a horizontally mirrored input -> the output in the unmirrored frame.

        Heatmaps ``(B, K, h, w)`` are flipped along x; regression ``(B, K, 2)`` in [-1, 1] units gets x negated;
        keypoints are re-indexed by the Skeleton's ``flip_perm`` (identity for a hand). Exact: no resampling.

        Raises:
            HandposeError: a bottom-up (PAF) model, whose fields would need their x components negated.
        """
        if self.bundle.codec.kind == "paf":
            raise HandposeError(f"{self.bundle.arch}: mirroring (flip test, left hands) is not supported for "
                                "bottom-up models")
        perm = list(self.bundle.skeleton.flip_perm)
        if self.bundle.codec.kind == "regression":
            out = out * torch.tensor([-1.0, 1.0], dtype=out.dtype)
        else:
            out = out.flip(-1)
        return out[:, perm]

    def is_left(self, image: np.ndarray, box: np.ndarray | None = None) -> bool:
        """Whether ``box`` of RGB ``(H, W, 3)`` ``image`` (the whole image when None) shows a left hand, by
        MediaPipe's landmark network (:data:`HANDEDNESS_MODEL`): its probability of a right hand < 0.5.

        Raises:
            HandposeError: the handedness network's weights are missing.
        """
        if self._handedness_bundle is None:
            self._handedness_bundle = load_model(HANDEDNESS_MODEL)
            self._handedness_bundle.network.eval()
        hb = self._handedness_bundle
        _, M = region_affine(box, image.shape[1], image.shape[0], hb.input_size)
        tensor = normalise(warp_to_input(image, M, hb.input_size, hb.pad_mode), hb.mean, hb.std)
        with torch.inference_mode():
            return bool(hb.network.landmarks(tensor[None]).handedness[0] < 0.5)

    @property
    def skeleton(self):
        return self.bundle.skeleton

    def prepare(self, image: np.ndarray, box: np.ndarray | None = None, name: str = "",
                hand: str | None = None) -> _Prepared:
        """Letterbox one RGB ``(H, W, 3)`` uint8 image (or its ``box``) into the model input and normalise it.

        Args:
            hand: ``"left"``, ``"right"`` or ``"auto"`` for this image (default: the predictor's ``hand``); the
                image is mirrored when its hand is not the predictor's ``model_hand``.

        Raises:
            HandposeError: not an ``(H, W, 3)`` array, or ``hand`` not one of :data:`HANDS`.
        """
        if image.ndim != 3 or image.shape[2] != 3:
            raise HandposeError(f"{name or 'image'}: expected (H, W, 3) RGB, got shape {image.shape}")
        hand = _check_hand(hand, f"{name or 'image'}: hand") or self.hand
        b = self.bundle
        box, M = region_affine(box, image.shape[1], image.shape[0], b.input_size)
        with torch_threads(self._glue_threads):
            tensor = normalise(warp_to_input(image, M, b.input_size, b.pad_mode), b.mean, b.std)
            if hand == "auto":
                hand = "left" if self.is_left(image, box) else "right"
            mirror = hand is not None and hand != self.model_hand
        return _Prepared(tensor, M, box, (image.shape[1], image.shape[0]), name, mirror)

    def landmark_path(self) -> bool:
        """True when one pass gives keypoints, presence and handedness: MediaPipe's landmark network
        (:func:`is_landmark_network`, or an ONNX file with the outputs :data:`LANDMARK_OUTPUTS`) without the flip
        test."""
        from handpose.export import OnnxNetwork

        if self.flip_test:
            return False
        net = self.bundle.network
        if isinstance(net, OnnxNetwork):
            return net.output_names == LANDMARK_OUTPUTS
        return is_landmark_network(self.bundle)

    @torch.inference_mode()
    def keypoints(self, batch: torch.Tensor, mirror: torch.Tensor | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """A normalised ``(B, 3, H, W)`` batch -> keypoints ``(B, K, 2)`` in input pixels and scores ``(B, K)``,
        plus presence and handedness ``(B,)`` on the :meth:`landmark_path` (None elsewhere, and for batches with
        mirrored images; every keypoint's score there is its hand's presence).

        Args:
            mirror: as :meth:`forward`.
        """
        if self.landmark_path() and (mirror is None or not bool(mirror.any())):
            net = self.bundle.network
            if isinstance(net, torch.nn.Module):
                lm = net.landmarks(batch)
                unit, presence, handedness = net.to_unit(lm.keypoints), lm.presence, lm.handedness
            else:  # the ONNX file's three outputs, the same computation
                unit, presence, handedness = (torch.from_numpy(o) for o in
                                              net.session.run(None, {net.input_name: batch.numpy()}))
            xy, _ = self.bundle.codec.decode(unit)  # as forward + codec, from the same pass
            scores = presence[:, None].expand(xy.shape[:2])
            return xy.numpy(), scores.numpy().astype(np.float32), presence.numpy(), handedness.numpy()
        xy, scores = self.bundle.codec.decode(self.forward(batch, mirror), self.decode)
        return xy.numpy(), scores.numpy().astype(np.float32), None, None

    @torch.inference_mode()
    def run(self, prepared: Sequence[_Prepared]) -> list[Result]:
        """Forward and decode prepared images (one batch), keypoints mapped back to original pixels."""
        if not prepared:
            return []
        with torch_threads(self._glue_threads):
            return self._run(prepared)

    def _run(self, prepared: Sequence[_Prepared]) -> list[Result]:
        batch = prepared[0].tensor[None] if len(prepared) == 1 else torch.stack([p.tensor for p in prepared])
        if self.bundle.codec.kind == "paf":
            return self._run_bottom_up(batch, prepared)
        mirror = torch.tensor([p.mirror for p in prepared])
        xy, scores, presence, handedness = self.keypoints(batch, mirror)
        return [Result(p.name, apply_affine(invert_affine(p.affine), xy[j])[None], scores[j][None], p.box[None],
                       p.image_size, self.bundle.skeleton,
                       presence=None if presence is None else presence[j:j + 1],
                       handedness=None if handedness is None else handedness[j:j + 1])
                for j, p in enumerate(prepared)]

    def _run_bottom_up(self, batch: torch.Tensor, prepared: Sequence[_Prepared]) -> list[Result]:
        """Every instance of each image: the network's last stage grouped by :func:`handpose.grouping.group`."""
        if self.flip_test:
            raise HandposeError("flip_test is not supported for bottom-up models")
        if any(p.mirror for p in prepared):
            raise HandposeError(f"{prepared[0].name or 'image'}: mirroring left hands is not supported for "
                                "bottom-up models")
        results = []
        for p, (kp, sc) in zip(prepared, self.bundle.codec.decode(self.forward(batch)), strict=True):
            inv = invert_affine(p.affine)
            kp = apply_affine(inv, kp.reshape(-1, 2)).reshape(kp.shape)  # NaN stays NaN
            boxes = np.repeat(p.box[None], len(kp), axis=0)
            results.append(Result(p.name, kp, sc, boxes, p.image_size, self.bundle.skeleton))
        return results

    def predict_arrays(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray | None] | None = None,
                       names: Sequence[str] | None = None, hands: Sequence[str | None] | None = None
                       ) -> list[Result]:
        """Predict RGB ``(H, W, 3)`` uint8 images (one instance each, in ``boxes`` or the whole image).

        Args:
            images: RGB arrays.
            boxes: per image ``[x, y, w, h]`` region (letterboxed into the model input) or None for the whole image.
            names: file names to put in the results.
            hands: per image ``"left"`` / ``"right"`` / ``"auto"`` / None (the predictor's ``hand``).

        Returns:
            One :class:`Result` per image, ``N = 1``.

        Raises:
            HandposeError: an array that is not ``(H, W, 3)``.
        """
        prepared = [self.prepare(img, boxes[i] if boxes is not None else None, names[i] if names else "",
                                 hands[i] if hands is not None else None)
                    for i, img in enumerate(images)]
        return [r for i in range(0, len(prepared), self.batch_size)
                for r in self.run(prepared[i:i + self.batch_size])]

    def predict_paths(self, paths: Sequence[str | Path], boxes: Sequence[np.ndarray | None] | None = None,
                      on_error: Callable[[Path, HandposeError], None] | None = None,
                      exif_transpose: bool = True, workers: int = 0,
                      max_pixels: int | None = MAX_PIXELS, hands: Sequence[str | None] | None = None
                      ) -> Iterator[Result]:
        """Predict image files in batches; unreadable files are passed to ``on_error`` (or raised if None).

        Args:
            exif_transpose: turn photos upright by their EXIF tag; keep it False when ``boxes`` or labels refer to
                the stored pixel grid.
            workers: processes that read and letterbox the next files while the network runs (0: in this one).
            max_pixels: files over this many pixels are refused unread (an error, see
                :func:`handpose.data.image.read_image`).
            hands: per file ``"left"`` / ``"right"`` / ``"auto"`` / None (the predictor's ``hand``).

        Yields:
            A :class:`Result` per readable file, in order.
        """
        files = _Files(self, list(paths), boxes, exif_transpose, max_pixels, hands)
        loader = torch.utils.data.DataLoader(files, batch_size=self.batch_size, num_workers=workers,
                                             collate_fn=list)
        for batch in loader:
            good = []
            for item in batch:
                if isinstance(item, _Failed):
                    if on_error is None:
                        raise item.error
                    on_error(item.path, item.error)
                else:
                    good.append(item)
            yield from self.run(good)


@dataclass
class _Prepared:
    tensor: torch.Tensor
    affine: np.ndarray
    box: np.ndarray
    image_size: tuple[int, int]
    name: str
    mirror: bool = False


@dataclass
class _Failed:
    path: Path
    error: HandposeError


class _Files(torch.utils.data.Dataset):
    """Reads and prepares image files (in DataLoader workers when asked); a bad file becomes a ``_Failed``."""

    def __init__(self, predictor: Predictor, paths: list, boxes, exif_transpose: bool, max_pixels: int | None,
                 hands=None):
        self.predictor, self.paths, self.boxes, self.exif = predictor, paths, boxes, exif_transpose
        self.max_pixels, self.hands = max_pixels, hands

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        p = self.paths[i]
        try:
            img = read_image(p, exif_transpose=self.exif, max_pixels=self.max_pixels)
            return self.predictor.prepare(img, self.boxes[i] if self.boxes is not None else None, str(p),
                                          self.hands[i] if self.hands is not None else None)
        except HandposeError as e:
            return _Failed(Path(p), e)


def predict(inputs: str | Path | np.ndarray | Sequence, model: ModelBundle | str | Path | None = None,
            batch_size: int = 32, flip_test: bool = False, hand: str | None = None,
            model_hand: str = "right") -> list[Result]:
    """Predict keypoints on images: an RGB array, a list of arrays, or paths / folders / globs.

    Args:
        hand: the images' hand, ``"left"``, ``"right"`` or ``"auto"`` (MediaPipe's handedness): a hand that is not
            ``model_hand`` is mirrored into the model and its keypoints back (see :class:`Predictor`).

    Returns:
        One :class:`Result` per image.

    Raises:
        HandposeError: an input that cannot be found or read.
    """
    predictor = Predictor(model, batch_size, flip_test=flip_test, hand=hand, model_hand=model_hand)
    if isinstance(inputs, np.ndarray):
        return predictor.predict_arrays([inputs])
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if items and all(isinstance(x, np.ndarray) for x in items):
        return predictor.predict_arrays(items)
    paths, problems = expand_inputs(items)
    if problems:
        raise HandposeError("; ".join(m for _, m in problems))
    return list(predictor.predict_paths(paths))


def _check_hand(hand: str | None, what: str) -> str | None:
    """``hand`` lower-cased when it is one of :data:`HANDS`, None for None.

    Raises:
        HandposeError: any other value (the message names ``what``).
    """
    if hand is None:
        return None
    if str(hand).lower() not in HANDS:
        raise HandposeError(f"{what} must be one of {', '.join(HANDS)} (got {hand!r})")
    return str(hand).lower()
