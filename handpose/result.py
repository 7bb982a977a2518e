"""What prediction returns: keypoints in original-image pixels with raw scores, no hidden thresholds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handpose.skeleton import Skeleton


@dataclass
class Result:
    """Prediction for one image.

    Attributes:
        file_name: the image's path as given (empty for in-memory arrays).
        keypoints: ``(N, K, 2)`` float32 ``(x, y)`` in pixels of the original image (N instances). Bottom-up
            models give NaN for a keypoint they did not find in an instance (score 0).
        scores: ``(N, K)`` float32 raw per-keypoint confidence (heatmap peak, in ``[0, 1]`` for sigmoid
            heatmaps); nothing is zeroed or dropped, apply any threshold yourself.
        boxes: ``(N, 4)`` ``[x, y, w, h]`` regions the model looked at, in original pixels.
        image_size: ``(width, height)`` of the original image.
        skeleton: the keypoint set.
    """

    file_name: str
    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    image_size: tuple[int, int]
    skeleton: Skeleton

    @property
    def instance_scores(self) -> np.ndarray:
        """``(N,)`` mean score of each instance's found keypoints."""
        found = np.isfinite(self.keypoints).all(axis=-1)
        with np.errstate(invalid="ignore"):
            return np.nan_to_num((self.scores * found).sum(axis=1) / found.sum(axis=1)).astype(np.float32)

    def to_coco(self) -> list[dict]:
        """COCO results form plus the file name: one dict per instance with
        ``{"file_name", "keypoints": [x1, y1, s1, ..., xK, yK, sK], "score"}``; a keypoint that was not found
        is written as ``0, 0, 0``."""
        out = []
        for kp, sc, s in zip(self.keypoints, self.scores, self.instance_scores, strict=True):
            found = np.isfinite(kp).all(axis=1)
            flat = np.concatenate([np.where(found[:, None], kp, 0.0), np.where(found, sc, 0.0)[:, None]],
                                  axis=1).reshape(-1)
            out.append({"file_name": self.file_name, "keypoints": [round(float(v), 3) for v in flat],
                        "score": round(float(s), 5)})
        return out
