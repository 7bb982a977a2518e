"""Image / folder / glob -> :class:`~handpose.result.Result`, in batches, reporting bad files without stopping."""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from handpose.bundle import ModelBundle, load_model
from handpose.data.dataset import normalise
from handpose.data.image import IMAGE_SUFFIXES, read_image
from handpose.data.transforms import (
    apply_affine,
    box_to_input_affine,
    full_image_box,
    invert_affine,
    warp_to_input,
)
from handpose.errors import HandposeError
from handpose.result import Result


def expand_inputs(items: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files, folders (their image files, sorted) and glob patterns -> image paths.

    Returns:
        ``(paths, problems)``: problems are ``(item, message)`` for inputs that match nothing.
    """
    paths: list[Path] = []
    problems: list[tuple[str, str]] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            if not found:
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


class Predictor:
    """Runs a :class:`ModelBundle` on images.

    Args:
        model: a bundle, a bundled model name or a file (default: the bundled default model).
        batch_size: images per forward pass.
        decode: heatmap decoding method (default: the model's).
        flip_test: also run the mirrored image and average the two outputs (Simple Baselines' flip test; the
            Skeleton's flip permutation re-indexes the mirrored output). Twice the compute.
    """

    def __init__(self, model: ModelBundle | str | Path | None = None, batch_size: int = 32, decode: str | None = None,
                 flip_test: bool = False):
        self.bundle = model if isinstance(model, ModelBundle) else load_model(model)
        self.bundle.network.eval()
        self.batch_size = max(1, int(batch_size))
        self.decode = decode
        self.flip_test = flip_test

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Network output for a normalised ``(B, 3, H, W)`` batch, averaged with the mirrored pass when
        ``flip_test`` is on (heatmaps mirrored back; regression x negated, in [-1, 1] units)."""
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

    @torch.inference_mode()
    def predict_arrays(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray | None] | None = None,
                       names: Sequence[str] | None = None) -> list[Result]:
        """Predict RGB ``(H, W, 3)`` uint8 images (one instance each, in ``boxes`` or the whole image).

        Args:
            images: RGB arrays.
            boxes: per image ``[x, y, w, h]`` region (letterboxed into the model input) or None for the whole image.
            names: file names to put in the results.

        Returns:
            One :class:`Result` per image, ``N = 1``.
        """
        b = self.bundle
        size = b.input_size
        results: list[Result] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            tensors, mats, used = [], [], []
            for j, img in enumerate(chunk):
                if img.ndim != 3 or img.shape[2] != 3:
                    raise HandposeError(f"image {start + j}: expected (H, W, 3) RGB, got shape {img.shape}")
                box = boxes[start + j] if boxes is not None and boxes[start + j] is not None else None
                box = np.asarray(box, np.float32) if box is not None else full_image_box(img.shape[1], img.shape[0])
                M = box_to_input_affine(box, size)
                tensors.append(normalise(warp_to_input(img, M, size, b.pad_mode), b.mean, b.std))
                mats.append(M)
                used.append(box)
            xy, scores = b.codec.decode(self.forward(torch.stack(tensors)), self.decode)
            xy, scores = xy.numpy(), scores.numpy()
            for j, img in enumerate(chunk):
                kp = apply_affine(invert_affine(mats[j]), xy[j])
                results.append(Result(names[start + j] if names else "", kp[None], scores[j][None].astype(np.float32),
                                      used[j][None], (img.shape[1], img.shape[0]), b.skeleton))
        return results

    def predict_paths(self, paths: Sequence[str | Path], boxes: Sequence[np.ndarray | None] | None = None,
                      on_error: Callable[[Path, HandposeError], None] | None = None,
                      exif_transpose: bool = True) -> Iterator[Result]:
        """Predict image files in batches; unreadable files are passed to ``on_error`` (or raised if None).

        ``exif_transpose`` turns photos upright by their EXIF tag; keep it False when ``boxes`` or labels refer to
        the stored pixel grid.

        Yields:
            A :class:`Result` per readable file, in order.
        """
        for start in range(0, len(paths), self.batch_size):
            imgs, names, bxs = [], [], []
            for k, p in enumerate(paths[start:start + self.batch_size]):
                try:
                    imgs.append(read_image(p, exif_transpose=exif_transpose))
                except HandposeError as e:
                    if on_error is None:
                        raise
                    on_error(Path(p), e)
                    continue
                names.append(str(p))
                bxs.append(boxes[start + k] if boxes is not None else None)
            yield from self.predict_arrays(imgs, bxs, names)


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
