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
    """

    def __init__(self, model: ModelBundle | str | Path | None = None, batch_size: int = 32, decode: str | None = None,
                 flip_test: bool = False, channels_last: bool = False):
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

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Network output for a normalised ``(B, 3, H, W)`` batch, averaged with the mirrored pass when
        ``flip_test`` is on (heatmaps mirrored back; regression x negated, in [-1, 1] units)."""
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        out = self.bundle.network(batch)
        if not self.flip_test:
            return out
        mirrored = self.bundle.network(batch.flip(-1))
        perm = list(self.bundle.skeleton.flip_perm)
        if self.bundle.codec.kind == "regression":
            mirrored = mirrored * torch.tensor([-1.0, 1.0], dtype=mirrored.dtype)
        else:
            mirrored = mirrored.flip(-1)
        return (out + mirrored[:, perm]) / 2

    @property
    def skeleton(self):
        return self.bundle.skeleton

    def prepare(self, image: np.ndarray, box: np.ndarray | None = None, name: str = "") -> _Prepared:
        """Letterbox one RGB ``(H, W, 3)`` uint8 image (or its ``box``) into the model input and normalise it.

        Raises:
            HandposeError: not an ``(H, W, 3)`` array.
        """
        if image.ndim != 3 or image.shape[2] != 3:
            raise HandposeError(f"{name or 'image'}: expected (H, W, 3) RGB, got shape {image.shape}")
        b = self.bundle
        box, M = region_affine(box, image.shape[1], image.shape[0], b.input_size)
        with torch_threads(self._glue_threads):
            tensor = normalise(warp_to_input(image, M, b.input_size, b.pad_mode), b.mean, b.std)
        return _Prepared(tensor, M, box, (image.shape[1], image.shape[0]), name)

    @torch.inference_mode()
    def run(self, prepared: Sequence[_Prepared]) -> list[Result]:
        """Forward and decode prepared images (one batch), keypoints mapped back to original pixels."""
        if not prepared:
            return []
        with torch_threads(self._glue_threads):
            return self._run(prepared)

    def _run(self, prepared: Sequence[_Prepared]) -> list[Result]:
        batch = torch.stack([p.tensor for p in prepared])
        if self.bundle.codec.kind == "paf":
            return self._run_bottom_up(batch, prepared)
        xy, scores = self.bundle.codec.decode(self.forward(batch), self.decode)
        xy, scores = xy.numpy(), scores.numpy().astype(np.float32)
        return [Result(p.name, apply_affine(invert_affine(p.affine), xy[j])[None], scores[j][None], p.box[None],
                       p.image_size, self.bundle.skeleton) for j, p in enumerate(prepared)]

    def _run_bottom_up(self, batch: torch.Tensor, prepared: Sequence[_Prepared]) -> list[Result]:
        """Every instance of each image: the network's last stage grouped by :func:`handpose.grouping.group`."""
        if self.flip_test:
            raise HandposeError("flip_test is not supported for bottom-up models")
        results = []
        for p, (kp, sc) in zip(prepared, self.bundle.codec.decode(self.forward(batch)), strict=True):
            inv = invert_affine(p.affine)
            kp = apply_affine(inv, kp.reshape(-1, 2)).reshape(kp.shape)  # NaN stays NaN
            boxes = np.repeat(p.box[None], len(kp), axis=0)
            results.append(Result(p.name, kp, sc, boxes, p.image_size, self.bundle.skeleton))
        return results

    def predict_arrays(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray | None] | None = None,
                       names: Sequence[str] | None = None) -> list[Result]:
        """Predict RGB ``(H, W, 3)`` uint8 images (one instance each, in ``boxes`` or the whole image).

        Args:
            images: RGB arrays.
            boxes: per image ``[x, y, w, h]`` region (letterboxed into the model input) or None for the whole image.
            names: file names to put in the results.

        Returns:
            One :class:`Result` per image, ``N = 1``.

        Raises:
            HandposeError: an array that is not ``(H, W, 3)``.
        """
        prepared = [self.prepare(img, boxes[i] if boxes is not None else None, names[i] if names else "")
                    for i, img in enumerate(images)]
        return [r for i in range(0, len(prepared), self.batch_size)
                for r in self.run(prepared[i:i + self.batch_size])]

    def predict_paths(self, paths: Sequence[str | Path], boxes: Sequence[np.ndarray | None] | None = None,
                      on_error: Callable[[Path, HandposeError], None] | None = None,
                      exif_transpose: bool = True, workers: int = 0,
                      max_pixels: int | None = MAX_PIXELS) -> Iterator[Result]:
        """Predict image files in batches; unreadable files are passed to ``on_error`` (or raised if None).

        Args:
            exif_transpose: turn photos upright by their EXIF tag; keep it False when ``boxes`` or labels refer to
                the stored pixel grid.
            workers: processes that read and letterbox the next files while the network runs (0: in this one).
            max_pixels: files over this many pixels are refused unread (an error, see
                :func:`handpose.data.image.read_image`).

        Yields:
            A :class:`Result` per readable file, in order.
        """
        files = _Files(self, list(paths), boxes, exif_transpose, max_pixels)
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


@dataclass
class _Failed:
    path: Path
    error: HandposeError


class _Files(torch.utils.data.Dataset):
    """Reads and prepares image files (in DataLoader workers when asked); a bad file becomes a ``_Failed``."""

    def __init__(self, predictor: Predictor, paths: list, boxes, exif_transpose: bool, max_pixels: int | None):
        self.predictor, self.paths, self.boxes, self.exif = predictor, paths, boxes, exif_transpose
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        p = self.paths[i]
        try:
            img = read_image(p, exif_transpose=self.exif, max_pixels=self.max_pixels)
            return self.predictor.prepare(img, self.boxes[i] if self.boxes is not None else None, str(p))
        except HandposeError as e:
            return _Failed(Path(p), e)


def predict(inputs: str | Path | np.ndarray | Sequence, model: ModelBundle | str | Path | None = None,
            batch_size: int = 32, flip_test: bool = False) -> list[Result]:
    """Predict keypoints on images: an RGB array, a list of arrays, or paths / folders / globs.

    Returns:
        One :class:`Result` per image.

    Raises:
        HandposeError: an input that cannot be found or read.
    """
    predictor = Predictor(model, batch_size, flip_test=flip_test)
    if isinstance(inputs, np.ndarray):
        return predictor.predict_arrays([inputs])
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if items and all(isinstance(x, np.ndarray) for x in items):
        return predictor.predict_arrays(items)
    paths, problems = expand_inputs(items)
    if problems:
        raise HandposeError("; ".join(m for _, m in problems))
    return list(predictor.predict_paths(paths))
