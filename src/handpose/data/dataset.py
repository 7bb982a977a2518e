"""The torch Dataset for single-instance (top-down) models: crop, augment, normalise, encode."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from handpose.data.cache import cached_inputs
from handpose.data.image import image_size, read_image
from handpose.data.keying import BackgroundCompositor
from handpose.data.records import Record
from handpose.data.transforms import (
    AugmentConfig,
    Augmenter,
    apply_affine,
    region_affine,
    warp_to_input,
)
from handpose.errors import HandposeError
from handpose.skeleton import Skeleton


def load_input(record: Record, input_size: tuple[int, int], pad_mode: str = "constant"
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a record's image and warp it to the model input (letterboxed; see :func:`warp_to_input` for
    ``pad_mode``).

    Returns:
        ``image`` ``(in_h, in_w, 3)`` uint8, ``keypoints`` ``(N, K, 2)`` in input pixels, and the ``(2, 3)``
        image -> input affine.

    Raises:
        HandposeError: the image cannot be read (the message names the file and the record).
    """
    try:
        img = read_image(record.image_path)
    except HandposeError as e:
        raise HandposeError(f"record {record.record_id}: {e}") from e
    _, M = region_affine(record.box, img.shape[1], img.shape[0], input_size)
    return warp_to_input(img, M, input_size, pad_mode), apply_affine(M, record.keypoints), M


def normalise(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(3, H, W)`` float32 ``(x / 255 - mean) / std``.

    OpenCV's ``blobFromImage`` does the cast, scale and HWC -> CHW in one pass (0.07 ms for 160x160 here, against
    0.25-0.5 ms in torch); the per-channel shift and scale are applied in place, and skipped for ``[0, 1]`` input.
    """
    t = torch.from_numpy(cv2.dnn.blobFromImage(np.ascontiguousarray(image), 1.0 / 255.0)[0])
    if any(m != 0.0 for m in mean):
        t.sub_(torch.tensor(mean, dtype=torch.float32)[:, None, None])
    if any(s != 1.0 for s in std):
        t.div_(torch.tensor(std, dtype=torch.float32)[:, None, None])
    return t


class KeypointDataset(Dataset):
    """Records -> ``{"image", "target", "weights", "keypoints", "visible", "index"}`` for one instance each.

    Args:
        records: single-instance records (``N == 1``).
        skeleton: the keypoint set (checked against the records' K, supplies the flip permutation).
        codec: target encoder with ``input_size`` and ``encode(keypoints, visible)`` (see :mod:`handpose.codecs`).
        mean, std: per-channel normalisation in ``[0, 1]`` units (see :func:`channel_stats`).
        augment: augmentation strengths, or ``None`` for validation.
        cache: decode and crop every image once, before training starts (which also checks every file): into
            memory (``True``), or into this folder (a path; see :mod:`handpose.data.cache`), where the next run
            finds it and every worker memory-maps it. ``False``: read each image when it is used.
        pad_mode: fill of the letterbox border, ``constant`` or ``border``.
        compositor: pastes green-screen crops onto real photos (:class:`handpose.data.keying.BackgroundCompositor`),
            before the augmentation, for records with a ``green_screen`` probability.
        green_screen: per record, the probability of that (default 0 for all).

    The ``weights`` of a sample (per keypoint: 0 unlabelled) are multiplied by its record's :attr:`Record.weight`.

    Raises:
        HandposeError: an unreadable image, a record with another keypoint count or several instances, or
            ``green_screen`` of another length than ``records``, or given without a compositor.
    """

    def __init__(self, records: list[Record], skeleton: Skeleton, codec, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                 augment: AugmentConfig | None = None, cache: bool | str | Path = True, pad_mode: str = "constant",
                 compositor: BackgroundCompositor | None = None, green_screen: Sequence[float] | None = None):
        self.records = records
        self.skeleton = skeleton
        self.codec = codec
        self.input_size = tuple(codec.input_size)
        self.mean, self.std = list(mean), list(std)
        self.pad_mode = pad_mode
        self.augmenter = Augmenter(augment, skeleton) if augment is not None else None
        for r in records:
            if r.keypoints.shape[1] != skeleton.num_keypoints:
                raise HandposeError(f"record {r.record_id}: {r.keypoints.shape[1]} keypoints, skeleton "
                                    f"{skeleton.name!r} has {skeleton.num_keypoints}")
            if r.keypoints.shape[0] != 1:
                raise HandposeError(f"record {r.record_id}: {r.keypoints.shape[0]} instances; single-instance "
                                    "models need one record per instance (COCO: per_instance=True)")
        self.compositor = compositor
        self.green_screen = np.zeros(len(records)) if green_screen is None else np.asarray(green_screen, np.float64)
        if len(self.green_screen) != len(records):
            raise HandposeError(f"green_screen has {len(self.green_screen)} probabilities for {len(records)} records")
        if compositor is None and self.green_screen.any():
            raise HandposeError("green_screen compositing needs background photos (config key backgrounds)")
        self._rng: np.random.Generator | None = None
        self._images: np.ndarray | None = None
        self._keypoints: np.ndarray | None = None
        if isinstance(cache, (str, Path)):
            self._images, self._keypoints = cached_inputs(records, self.input_size, pad_mode, cache, self._decode_all)
        elif cache:
            self._images, self._keypoints = self._decode_all()
        else:
            for r in records:
                image_size(r.image_path)

    def _decode_all(self) -> tuple[np.ndarray, np.ndarray]:
        loaded = [load_input(r, self.input_size, self.pad_mode) for r in self.records]
        return np.stack([x[0] for x in loaded]), np.stack([x[1] for x in loaded])

    def __len__(self) -> int:
        return len(self.records)

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Un-augmented input image ``(in_h, in_w, 3)`` uint8, keypoints ``(N, K, 2)`` input px, visibility."""
        r = self.records[index]
        if self._images is not None:
            return self._images[index], self._keypoints[index], r.visible
        img, kp, _ = load_input(r, self.input_size, self.pad_mode)
        return img, kp, r.visible

    @property
    def rng(self) -> np.random.Generator:
        """This process's generator, seeded from numpy's global state (which Lightning seeds per worker)."""
        if self._rng is None:
            self._rng = np.random.default_rng(np.random.randint(2**31))
        return self._rng

    def __getitem__(self, index: int) -> dict:
        img, kp, vis = self.raw(index)
        if self.green_screen[index] and self.rng.random() < self.green_screen[index]:
            img = self.compositor(img, self.rng)
        if self.augmenter is not None:
            img, kp, vis, _ = self.augmenter(img, kp, vis)
        target, weights = self.codec.encode(kp[0], vis[0])
        if self.records[index].weight != 1.0:
            weights = weights * np.float32(self.records[index].weight)
        return {
            "image": normalise(img, self.mean, self.std),
            "target": torch.from_numpy(target),
            "weights": torch.from_numpy(weights),
            "keypoints": torch.from_numpy(np.ascontiguousarray(kp[0], dtype=np.float32)),
            "visible": torch.from_numpy(np.ascontiguousarray(vis[0]).astype(np.int64)),
            "index": index,
        }


def channel_stats(images: Iterable[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of ``(H, W, 3)`` uint8 images (e.g. a training split's un-augmented input crops),
    in ``[0, 1]`` units (the tutorial normalises by the training set's channel statistics).

    Returns:
        ``(mean, std)``, three floats each (RGB).

    Raises:
        HandposeError: no images.
    """
    s = np.zeros(3)
    s2 = np.zeros(3)
    n = 0
    for image in images:
        img = image.reshape(-1, 3).astype(np.float64) / 255.0
        s += img.sum(0)
        s2 += (img**2).sum(0)
        n += img.shape[0]
    if n == 0:
        raise HandposeError("channel statistics of an empty set of images")
    mean = s / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 1e-12))
    return mean.round(6).tolist(), std.round(6).tolist()
