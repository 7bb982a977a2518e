"""The record every reader produces: one image, its instances' keypoints and the region to crop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handpose.errors import HandposeError


@dataclass
class Record:
    """One labelled image (or one instance of it, for single-instance models).

    Attributes:
        image_path: the image file.
        keypoints: ``(N, K, 2)`` float32, ``(x, y)`` pixels of the stored image (pixel centres at integers).
        visible: ``(N, K)`` uint8, COCO visibility: 0 unlabelled, 1 labelled but hidden, 2 visible.
        box: ``(4,)`` float32 ``[x, y, w, h]`` region of the image the model looks at (the hand box with its
            margin for single-hand models), or ``None`` for the whole image.
        record_id: a name for messages and reports, e.g. ``"training_xyz.json[17]"``.
        ignore_boxes: ``(M, 4)`` ``[x, y, w, h]`` regions whose people are not labelled (COCO crowd or
            unlabelled annotations): bottom-up training masks them out of the loss.
        weight: loss weight of the record's keypoints (1: a person's label; below 1 for noisier labels such as a
            teacher model's, see :func:`handpose.data.coco.teacher_weight`).
    """

    image_path: Path
    keypoints: np.ndarray
    visible: np.ndarray
    box: np.ndarray | None = None
    record_id: str = ""
    ignore_boxes: np.ndarray | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        if self.ignore_boxes is not None:
            self.ignore_boxes = np.asarray(self.ignore_boxes, dtype=np.float32).reshape(-1, 4)
        if self.keypoints.ndim == 2:
            self.keypoints = self.keypoints[None]
        self.visible = np.asarray(self.visible, dtype=np.uint8).reshape(self.keypoints.shape[:2])
        if self.box is not None:
            self.box = np.asarray(self.box, dtype=np.float32).reshape(4)


def check_keypoints(kp: np.ndarray, num_keypoints: int, where: str) -> np.ndarray:
    """Check a keypoint array against the Skeleton's K and for NaN / infinite values.

    Args:
        kp: ``(K, 2)`` or ``(K, 3)`` array.
        num_keypoints: K expected from the Skeleton.
        where: the file and record, for the message.

    Returns:
        The array as float32.

    Raises:
        HandposeError: wrong shape, ragged rows, non-numbers or a non-finite coordinate.
    """
    try:
        kp = np.asarray(kp, dtype=np.float32)
    except (TypeError, ValueError) as e:  # ragged lists, strings
        raise HandposeError(f"{where}: expected {num_keypoints} rows of numbers, got {str(kp)[:80]} ({e})") from e
    if kp.ndim != 2 or kp.shape[0] != num_keypoints:
        raise HandposeError(f"{where}: expected {num_keypoints} keypoints, got array of shape {kp.shape}")
    if not np.all(np.isfinite(kp)):
        bad = np.where(~np.isfinite(kp).all(axis=1))[0].tolist()
        raise HandposeError(f"{where}: non-finite (NaN or infinite) coordinates at keypoints {bad}")
    return kp


def check_not_empty(records: list, where: str) -> list:
    """Raise :class:`HandposeError` if a data set has no records."""
    if not records:
        raise HandposeError(f"{where}: the data set is empty (no usable records)")
    return records
