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
        keypoints: ``(N, K, 2)`` float32 ``(x, y)`` in pixels of the original image (N instances).
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
        """``(N,)`` mean keypoint score of each instance."""
        return self.scores.mean(axis=1) if self.scores.size else np.zeros(len(self.scores), np.float32)

    def to_coco(self) -> list[dict]:
        """COCO results form plus the file name: one dict per instance with
        ``{"file_name", "keypoints": [x1, y1, s1, ..., xK, yK, sK], "score"}``."""
        out = []
        for kp, sc, s in zip(self.keypoints, self.scores, self.instance_scores, strict=True):
            flat = np.concatenate([kp, sc[:, None]], axis=1).reshape(-1)
            out.append({"file_name": self.file_name, "keypoints": [round(float(v), 3) for v in flat],
                        "score": round(float(s), 5)})
        return out
