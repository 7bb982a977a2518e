"""Keypoints as input pixels with the image edge at 0 (MediaPipe's landmark tensors) <-> this project's pixels.

MediaPipe's landmark networks output x, y in pixels of their input and normalise them by the input size
(``TensorsToLandmarksCalculator``: ``x / input_image_width``), a scale on which 0 and 1 are the image's outer edges:
pixel ``i`` spans ``[i, i + 1]``. This project puts pixel centres at integer coordinates (pixel ``i`` spans
``[i - 0.5, i + 0.5]``, :mod:`handpose.data.transforms`), so ``x = x_edge - 0.5`` (same for y).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class PixelCodec:
    """Encode keypoints as edge-origin input pixels and decode such output (with an optional presence score).

    Args:
        input_size: ``(width, height)`` of the model input in pixels.
    """

    input_size: tuple[int, int]
    kind = "pixels"
    #: What is added to this project's pixel coordinates to get the edge-origin ones.
    offset = 0.5

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(K, 2)`` input pixels (centres at integers) -> target ``(K, 2)`` float32 edge-origin pixels (0 for
        unlabelled keypoints) and weights ``(K,)``: 1 for labelled keypoints."""
        target = np.asarray(keypoints, np.float32) + np.float32(self.offset)
        labelled = np.asarray(visible) > 0
        target[~labelled] = 0.0
        return target, labelled.astype(np.float32)

    def decode(self, output, method: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Edge-origin pixels -> keypoints ``(B, K, 2)`` input pixels (centres at integers) and scores ``(B, K)``.

        Args:
            output: a ``(B, K, D)`` tensor with ``D >= 2`` (x, y first; MediaPipe's z is ignored): scores are 1;
                or an object with ``keypoints`` ``(B, K, D)`` and ``presence`` ``(B,)`` (such as
                :class:`handpose.models.mediapipe_hand.HandLandmarks`): every keypoint of an instance gets its
                presence probability as score.
            method: accepted for interface parity and ignored.

        Raises:
            ValueError: keypoints that are not ``(B, K, D)`` with ``D >= 2``.
        """
        presence = getattr(output, "presence", None)
        keypoints = getattr(output, "keypoints", output)
        if keypoints.ndim != 3 or keypoints.shape[-1] < 2:
            raise ValueError(f"expected keypoints of shape (B, K, D >= 2), got {tuple(keypoints.shape)}")
        xy = keypoints[..., :2].detach().float() - self.offset
        if presence is None:
            scores = torch.ones(xy.shape[:2], dtype=xy.dtype, device=xy.device)
        else:
            scores = presence.detach().float().reshape(-1, 1).expand(xy.shape[:2]).contiguous()
        return xy, scores
