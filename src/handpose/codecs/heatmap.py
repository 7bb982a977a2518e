"""Gaussian heatmap codec (Tompson et al., 2014; Simple Baselines, Xiao et al., ECCV 2018).

Heatmap cell ``j`` (stride ``s``) is centred on input pixel ``j * s + (s - 1) / 2``, so heatmap coordinates are
``x_hm = (x + 0.5) / s - 0.5``; with ``s = 1`` they are input pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

DECODE_METHODS = ("argmax", "average", "subpixel")


@dataclass(frozen=True)
class HeatmapCodec:
    """Encode keypoints as Gaussian heatmaps and decode heatmaps to keypoints.

    Args:
        input_size: ``(width, height)`` of the model input in pixels.
        stride: input pixels per heatmap cell (the network's output stride).
        sigma: Gaussian standard deviation in heatmap cells (the tutorial's 2.5 px at stride 1).
        decode: default decoding method, one of ``argmax``, ``average`` (the tutorial's weighted average over
            the whole map) and ``subpixel`` (argmax refined by a parabola fit to the log-heatmap on each axis,
            the second-order Taylor step of DARK, Zhang et al., CVPR 2020; exact for a Gaussian peak).
    """

    input_size: tuple[int, int]
    stride: int = 1
    sigma: float = 2.5
    decode_method: str = "subpixel"
    kind = "heatmap"

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """``(width, height)`` of the heatmaps."""
        return (self.input_size[0] // self.stride, self.input_size[1] // self.stride)

    def to_heatmap_coords(self, xy: np.ndarray | torch.Tensor):
        """Input pixels -> heatmap cells (same type and shape)."""
        return (xy + 0.5) / self.stride - 0.5

    def to_input_coords(self, xy: np.ndarray | torch.Tensor):
        """Heatmap cells -> input pixels (same type and shape)."""
        return (xy + 0.5) * self.stride - 0.5

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gaussian heatmaps for one instance.

        Args:
            keypoints: ``(K, 2)`` ``(x, y)`` in input pixels.
            visible: ``(K,)`` COCO visibility; 0 means unlabelled (its map is all zero and weight 0).

        Returns:
            ``heatmaps`` ``(K, H, W)`` float32 in ``[0, 1]`` with peak 1 at the keypoint
            (``exp(-d^2 / (2 sigma^2))``, d in cells), and ``weights`` ``(K,)`` float32, 1 for labelled keypoints.
            A labelled keypoint outside the input gets weight 1 and a map that is ~0, so the model learns to
            output nothing for it.
        """
        w, h = self.heatmap_size
        xy = self.to_heatmap_coords(np.asarray(keypoints, dtype=np.float32))
        xs = np.arange(w, dtype=np.float32)
        ys = np.arange(h, dtype=np.float32)
        gx = np.exp(-((xs[None, :] - xy[:, :1]) ** 2) / (2 * self.sigma**2))  # (K, W)
        gy = np.exp(-((ys[None, :] - xy[:, 1:]) ** 2) / (2 * self.sigma**2))  # (K, H)
        heatmaps = gy[:, :, None] * gx[:, None, :]
        labelled = np.asarray(visible) > 0
        heatmaps[~labelled] = 0.0
        return heatmaps.astype(np.float32), labelled.astype(np.float32)

    def decode(self, heatmaps: torch.Tensor | np.ndarray, method: str | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints from a batch of heatmaps, vectorised over the batch.

        Runs in NumPy on one thread: the maps are small, and torch's thread pool costs more than the work at
        batch 1 (measured in ``benchmarks/bench_speed.py``).

        Args:
            heatmaps: ``(B, K, H, W)`` tensor or array, larger is more likely (e.g. sigmoid output).
            method: ``argmax``, ``average`` or ``subpixel`` (default: the codec's ``decode_method``).

        Returns:
            ``keypoints`` ``(B, K, 2)`` float32 ``(x, y)`` in input pixels and ``scores`` ``(B, K)``: the
            heatmap maximum (no threshold applied); tensors on the device of ``heatmaps``.

        Raises:
            ValueError: unknown method or an input that is not 4-D.
        """
        method = method or self.decode_method
        if method not in DECODE_METHODS:
            raise ValueError(f"unknown decode method {method!r}; expected one of {DECODE_METHODS}")
        if heatmaps.ndim != 4:
            raise ValueError(f"expected heatmaps of shape (B, K, H, W), got {tuple(heatmaps.shape)}")
        device = heatmaps.device if isinstance(heatmaps, torch.Tensor) else torch.device("cpu")
        if isinstance(heatmaps, torch.Tensor):
            heatmaps = heatmaps.detach().float().cpu().numpy()
        hm = np.asarray(heatmaps, dtype=np.float32)
        b, k, h, w = hm.shape
        flat = hm.reshape(b, k, -1)
        idx = flat.argmax(axis=-1)  # the first maximum, as torch's max
        scores = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
        px = (idx % w).astype(np.float32)
        py = (idx // w).astype(np.float32)
        if method == "average":
            wts = np.clip(hm, 0.0, None)
            total = np.maximum(wts.sum(axis=(2, 3)), 1e-12)
            px = (wts.sum(axis=2) * np.arange(w, dtype=np.float32)).sum(-1) / total
            py = (wts.sum(axis=3) * np.arange(h, dtype=np.float32)).sum(-1) / total
        elif method == "subpixel":
            px = px + _parabola_offset(flat, idx, 1, (px > 0) & (px < w - 1))
            py = py + _parabola_offset(flat, idx, w, (py > 0) & (py < h - 1))
        xy = self.to_input_coords(np.stack([px, py], axis=-1).astype(np.float32))
        return torch.from_numpy(xy).to(device), torch.from_numpy(np.ascontiguousarray(scores)).to(device)


def _parabola_offset(flat: np.ndarray, idx: np.ndarray, step: int, valid: np.ndarray) -> np.ndarray:
    """Peak offset in ``[-0.5, 0.5]`` from a parabola through the log-heatmap at ``idx - step, idx, idx + step``."""
    n = flat.shape[-1]
    lo, mid, hi = (np.log(np.maximum(np.take_along_axis(flat, np.clip(idx + d, 0, n - 1)[..., None], -1)[..., 0],
                                     1e-10)) for d in (-step, 0, step))
    curv = lo - 2 * mid + hi
    offset = np.where(curv < -1e-6, 0.5 * (lo - hi) / np.minimum(curv, -1e-6), 0.0)
    return np.where(valid, np.clip(offset, -0.5, 0.5), 0.0).astype(np.float32)
