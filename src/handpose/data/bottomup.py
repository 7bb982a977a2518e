"""The torch Dataset for bottom-up models: whole images (or windows of them) with every instance, ignore masks,
mosaics and composites (:class:`handpose.data.composite.CompositeSource`)."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from handpose.codecs.paf import PafCodec
from handpose.data.composite import CompositeSource, map_boxes
from handpose.data.dataset import load_input, normalise
from handpose.data.image import read_image
from handpose.data.records import Record
from handpose.data.transforms import AugmentConfig, Augmenter, apply_affine, warp_to_input
from handpose.errors import HandposeError
from handpose.skeleton import Skeleton


def ignore_mask(height: int, width: int, boxes: np.ndarray | None) -> np.ndarray:
    """``(H, W)`` uint8 loss mask: 1 everywhere but inside the ``[x, y, w, h]`` boxes (0)."""
    mask = np.ones((height, width), np.uint8)
    for x, y, w, h in np.asarray(boxes if boxes is not None else [], np.float32).reshape(-1, 4):
        x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
        mask[y0:max(int(np.ceil(y + h)), 0), x0:max(int(np.ceil(x + w)), 0)] = 0  # boxes outside mask nothing
    return mask


def place(record: Record, size: tuple[int, int], pad_mode: str = "constant"
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Letterbox a record's box (or whole image) into ``size``, with its ignore mask.

    Returns:
        ``image`` ``(h, w, 3)``, ``keypoints`` ``(N, K, 2)`` in the placed image, ``mask`` ``(h, w)`` uint8.

    Raises:
        HandposeError: the image cannot be read (the message names the record).
    """
    image, keypoints, M = load_input(record, size, pad_mode)
    boxes = np.asarray(record.ignore_boxes if record.ignore_boxes is not None else [], np.float32).reshape(-1, 4)
    # the letterbox only scales and shifts, so boxes stay axis-aligned: map their corners
    corners = apply_affine(M, np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=0))
    mapped = np.concatenate([corners[:len(boxes)], corners[len(boxes):] - corners[:len(boxes)]], axis=1)
    return image, keypoints, ignore_mask(size[1], size[0], mapped)


def window(record: Record, size: tuple[int, int], scale: float, rng: np.random.Generator,
           pad_mode: str = "constant") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a ``size`` window out of a record's image scaled by ``scale``, around one of its instances.

    Whole photos are letterboxed at prediction into a larger input than the training crops (a bottom-up model's
    ``predict_size``); this cuts training windows at that scale instead of shrinking the whole photo into ``size``.
    The window's centre is the keypoint-box centre of a random labelled instance (the image centre when none is
    labelled), shifted by up to a third of the window either way.

    Args:
        size: ``(width, height)`` of the window, input pixels.
        scale: input pixels per image pixel (> 0).
        rng: the instance and shift draws.

    Returns:
        ``image`` ``(h, w, 3)``, ``keypoints`` ``(N, K, 2)`` in the window, ``mask`` ``(h, w)`` uint8 (0 in the
        record's ignore boxes).

    Raises:
        HandposeError: the image cannot be read (the message names the record), or ``scale`` <= 0.
    """
    if not scale > 0:
        raise HandposeError(f"record {record.record_id}: window scale must be > 0, got {scale}")
    try:
        img = read_image(record.image_path)
    except HandposeError as e:
        raise HandposeError(f"record {record.record_id}: {e}") from e
    labelled = [i for i in range(len(record.keypoints)) if (record.visible[i] > 0).sum() > 0]
    if labelled:
        i = labelled[int(rng.integers(len(labelled)))]
        pts = record.keypoints[i][record.visible[i] > 0]
        centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
    else:
        centre = np.array([(img.shape[1] - 1) / 2, (img.shape[0] - 1) / 2])
    w, h = size
    centre = centre + rng.uniform(-1, 1, 2) * np.array([w, h]) / (3 * scale)
    M = np.array([[scale, 0.0, (w - 1) / 2 - scale * centre[0]], [0.0, scale, (h - 1) / 2 - scale * centre[1]]])
    boxes = record.ignore_boxes if record.ignore_boxes is not None else np.zeros((0, 4), np.float32)
    return (warp_to_input(img, M, size, pad_mode), apply_affine(M, record.keypoints),
            ignore_mask(h, w, map_boxes(M, boxes)))


def mosaic(records: list[Record], input_size: tuple[int, int], pad_mode: str = "constant"
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compose 4 records into one 2x2 image (each letterboxed into a quarter), carrying all their labels.

    Turns single-instance photos (e.g. FreiHAND-style hand crops) into multi-instance training images.

    Returns:
        ``image`` ``(H, W, 3)``, ``keypoints`` ``(N, K, 2)``, ``visible`` ``(N, K)``, ``mask`` ``(H, W)``.
    """
    w, h = input_size
    cw, ch = w // 2, h // 2
    image = np.zeros((h, w, 3), np.uint8)
    mask = np.ones((h, w), np.uint8)
    kps, vis = [], []
    for i, r in enumerate(records[:4]):
        ox, oy = (i % 2) * cw, (i // 2) * ch
        img, kp, m = place(r, (cw, ch), pad_mode)
        image[oy:oy + ch, ox:ox + cw] = img
        mask[oy:oy + ch, ox:ox + cw] = m
        kps.append(kp + np.float32((ox, oy)))
        vis.append(r.visible)
    return image, np.concatenate(kps), np.concatenate(vis), mask


class BottomUpDataset(Dataset):
    """Records (one per image, any number of instances) -> ``{"image", "heatmaps", "pafs", "mask", "index"}``.

    Args:
        records: per-image records (COCO ``per_instance=False``); ``ignore_boxes`` are masked out of the loss.
        skeleton: must match the codec's.
        codec: the :class:`PafCodec` (input size, stride, sigma, PAF width).
        mean, std: per-channel normalisation in ``[0, 1]`` units.
        augment: augmentation strengths (flips swap left and right by the Skeleton), or None.
        mosaic_records: records to compose 2x2 mosaics from (e.g. single-hand photos), used with probability
            ``mosaic_prob`` instead of ``records[index]``.
        pad_mode: letterbox fill (``constant`` or ``border``).
        composites: draws hands pasted into background photos at the input size, used with probability
            ``composite_prob`` instead of ``records[index]`` (before mosaics are considered).
        crop_scale: ``(min, max)``: ``records[index]`` is cut as a :func:`window` at a scale drawn uniformly from
            this range (input pixels per image pixel) instead of being letterboxed whole; None: letterboxed.

    Shapes:
        ``image`` ``(3, H, W)``; ``heatmaps`` ``(K + 1, H/s, W/s)``; ``pafs`` ``(2 L, H/s, W/s)``; ``mask``
        ``(1, H/s, W/s)`` in ``[0, 1]`` (the share of each cell that counts).
    """

    def __init__(self, records: list[Record], skeleton: Skeleton, codec: PafCodec, mean=(0.0, 0.0, 0.0),
                 std=(1.0, 1.0, 1.0), augment: AugmentConfig | None = None, mosaic_records: list[Record] | None = None,
                 mosaic_prob: float = 0.0, pad_mode: str = "constant", composites: CompositeSource | None = None,
                 composite_prob: float = 0.0, crop_scale: tuple[float, float] | None = None):
        for r in list(records) + list(mosaic_records or []):
            if r.keypoints.shape[1] != skeleton.num_keypoints:
                raise HandposeError(f"record {r.record_id}: {r.keypoints.shape[1]} keypoints, skeleton "
                                    f"{skeleton.name!r} has {skeleton.num_keypoints}")
        self.records, self.skeleton, self.codec = records, skeleton, codec
        self.mean, self.std = list(mean), list(std)
        self.augmenter = Augmenter(augment, skeleton) if augment is not None else None
        self.mosaic_records = list(mosaic_records or [])
        self.mosaic_prob = mosaic_prob if self.mosaic_records else 0.0
        self.pad_mode = pad_mode
        if composites is not None and composites.hands[0].keypoints.shape[1] != skeleton.num_keypoints:
            raise HandposeError(f"composite hands have {composites.hands[0].keypoints.shape[1]} keypoints, skeleton "
                                f"{skeleton.name!r} has {skeleton.num_keypoints}")
        self.composites = composites
        self.composite_prob = composite_prob if composites is not None else 0.0
        self.crop_scale = crop_scale

    def __len__(self) -> int:
        return len(self.records)

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Un-normalised ``(image, keypoints (N, K, 2), visible (N, K), mask (H, W))`` at input size."""
        if self.composite_prob and np.random.random() < self.composite_prob:
            c = self.composites.draw(np.random.default_rng(np.random.randint(2**31)), self.codec.input_size)
            return c.image, c.keypoints, c.visible, ignore_mask(c.image.shape[0], c.image.shape[1], c.ignore_boxes)
        if self.mosaic_prob and np.random.random() < self.mosaic_prob:
            pick = np.random.choice(len(self.mosaic_records), size=4, replace=len(self.mosaic_records) < 4)
            return mosaic([self.mosaic_records[i] for i in pick], self.codec.input_size, self.pad_mode)
        r = self.records[index]
        if self.crop_scale is not None:
            rng = np.random.default_rng(np.random.randint(2**31))
            img, kp, mask = window(r, self.codec.input_size, float(rng.uniform(*self.crop_scale)), rng, self.pad_mode)
            return img, kp, r.visible.copy(), mask
        img, kp, mask = place(r, self.codec.input_size, pad_mode=self.pad_mode)
        return img, kp, r.visible.copy(), mask

    def __getitem__(self, index: int) -> dict:
        img, kp, vis, mask = self.sample(index)
        if self.augmenter is not None:
            img, kp, vis, mask = self.augmenter(img, kp, vis, mask)
        heatmaps, pafs = self.codec.encode(kp, vis)
        w, h = self.codec.map_size
        cell_mask = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        return {
            "image": normalise(img, self.mean, self.std),
            "heatmaps": torch.from_numpy(heatmaps),
            "pafs": torch.from_numpy(pafs),
            "mask": torch.from_numpy(cell_mask)[None],
            "index": index,
        }
