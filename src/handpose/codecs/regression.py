"""Coordinate regression codec: input pixels <-> ``[-1, 1]`` (the small-data tutorial, seed 001).

``-1`` and ``1`` are the outer edges of the first and last pixel: ``u = 2 (x + 0.5) / W - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class RegressionCodec:
    """Encode keypoints as coordinates in ``[-1, 1]`` of the model input and decode them back.

    Args:
        input_size: ``(width, height)`` of the model input in pixels.
    """

    input_size: tuple[int, int]
    kind = "regression"

    def to_unit(self, xy):
        """Input pixels -> ``[-1, 1]`` (numpy or torch, ``(..., 2)``)."""
        w, h = self.input_size
        scale = np.array([2.0 / w, 2.0 / h], np.float32)
        if isinstance(xy, torch.Tensor):
            scale = torch.as_tensor(scale, device=xy.device)
        return (xy + 0.5) * scale - 1.0

    def to_pixels(self, uv):
        """``[-1, 1]`` -> input pixels (numpy or torch, ``(..., 2)``)."""
        w, h = self.input_size
        half = np.array([w / 2.0, h / 2.0], np.float32)
        if isinstance(uv, torch.Tensor):
            half = torch.as_tensor(half, device=uv.device)
        return (uv + 1.0) * half - 0.5

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(K, 2)`` input pixels -> target ``(K, 2)`` float32 in ``[-1, 1]`` (may leave the range for points
        outside the input) and weights ``(K,)``: 1 for labelled keypoints."""
        target = self.to_unit(np.asarray(keypoints, np.float32)).astype(np.float32)
        labelled = np.asarray(visible) > 0
        target[~labelled] = 0.0
        return target, labelled.astype(np.float32)

    def decode(self, output: torch.Tensor, method: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Network output ``(B, K, 2)`` in ``[-1, 1]`` -> keypoints ``(B, K, 2)`` input pixels and scores ``(B, K)``.

        Regression gives no confidence: every score is 1. ``method`` is accepted for interface parity and ignored.

        Raises:
            ValueError: output that is not ``(B, K, 2)``.
        """
        if output.ndim != 3 or output.shape[-1] != 2:
            raise ValueError(f"expected regression output of shape (B, K, 2), got {tuple(output.shape)}")
        out = output.detach().float()
        return self.to_pixels(out), torch.ones(out.shape[:2], dtype=out.dtype, device=out.device)
