"""Temporal smoothing of keypoints over video frames."""

from __future__ import annotations

import math

import numpy as np


class OneEuroFilter:
    """The 1€ filter (Casiez, Roussel and Vogel, CHI 2012): a low-pass filter whose cutoff rises with speed, so
    keypoints are steady when the hand rests and follow it with little lag when it moves.

    For a new value ``x`` at time ``t`` (seconds), with ``dt`` since the last one and
    ``alpha(fc) = 1 / (1 + 1 / (2 pi fc dt))``: the speed ``dx = (x - x_prev_filtered) / dt`` is smoothed with
    cutoff ``d_cutoff``; the value is smoothed with cutoff ``min_cutoff + beta * |dx_smoothed|``.

    Args:
        min_cutoff: cutoff frequency in Hz at rest (lower: steadier, more lag).
        beta: speed coefficient (higher: less lag when moving).
        d_cutoff: cutoff frequency in Hz for the speed.

    Works element-wise on arrays of any fixed shape, e.g. ``(N, K, 2)`` keypoints in pixels.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget the history (e.g. when the number of instances changes)."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff, dt: float):
        return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * dt))

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter one observation ``x`` taken at time ``t`` (strictly increasing); returns the smoothed value."""
        x = np.asarray(x, np.float64)
        if self._x is None or self._x.shape != x.shape or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self._dx), dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x.copy()
