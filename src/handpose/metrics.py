"""Keypoint metrics: pure functions, numpy in, numbers out.

Shapes: predictions and ground truth ``(N, K, 2)`` ``(x, y)``; ``mask`` ``(N, K)`` bool, True where the ground
truth is labelled. PCK and AUC follow MMPose ``evaluation/functional/keypoint_eval.py``: distances are divided by
a per-instance normalisation, accuracy is computed per keypoint over the instances where it is labelled, then
averaged over keypoints; a keypoint counts as correct when its normalised distance is strictly below the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def keypoint_errors(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Euclidean distance per keypoint, ``(N, K)``, NaN where ``mask`` is False. Units: those of the inputs."""
    d = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)
    return np.where(np.asarray(mask, bool), d, np.nan)


def epe(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """End-point error: mean distance over labelled keypoints (NaN if none)."""
    e = keypoint_errors(pred, gt, mask)
    return float(np.nanmean(e)) if np.any(~np.isnan(e)) else float("nan")


def error_summary(errors: np.ndarray) -> dict[str, float]:
    """Mean, median, 90th and 95th percentile and maximum of an error array (NaNs ignored)."""
    e = np.asarray(errors, np.float64)
    e = e[~np.isnan(e)]
    if e.size == 0:
        return {k: float("nan") for k in ("mean", "median", "p90", "p95", "max")}
    return {"mean": float(e.mean()), "median": float(np.median(e)), "p90": float(np.percentile(e, 90)),
            "p95": float(np.percentile(e, 95)), "max": float(e.max())}


def pck_per_keypoint(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, thr: float,
                     norm: np.ndarray | float) -> np.ndarray:
    """PCK of each keypoint: share of instances with ``distance / norm < thr``.

    Args:
        norm: ``(N,)`` per-instance normalisation (e.g. hand box size in pixels) or a scalar.

    Returns:
        ``(K,)`` accuracies in ``[0, 1]``, NaN for a keypoint never labelled (or whose norms are all <= 0).
    """
    n = np.broadcast_to(np.asarray(norm, np.float64), (np.asarray(pred).shape[0],))
    m = np.asarray(mask, bool) & (n > 0)[:, None]
    d = keypoint_errors(pred, gt, m) / np.where(n > 0, n, 1.0)[:, None]
    hits = np.where(m, d < thr, False).sum(0)
    counts = m.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)


def pck(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, thr: float, norm: np.ndarray | float) -> float:
    """PCK@thr: mean over keypoints of :func:`pck_per_keypoint` (MMPose ``keypoint_pck_accuracy``)."""
    acc = pck_per_keypoint(pred, gt, mask, thr, norm)
    return float(np.nanmean(acc)) if np.any(~np.isnan(acc)) else 0.0


def auc(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, norm_factor: float = 30.0, num_thrs: int = 20) -> float:
    """Area under the PCK curve for thresholds ``0, 1/num_thrs, ..., (num_thrs-1)/num_thrs`` of ``norm_factor``
    (MMPose ``keypoint_auc``; 30 px is its setting for hand data sets). In ``[0, 1]``."""
    return float(np.mean([pck(pred, gt, mask, i / num_thrs, norm_factor) for i in range(num_thrs)]))


def pck_curve(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, thresholds: Sequence[float],
              norm: np.ndarray | float) -> np.ndarray:
    """PCK at each threshold, ``(T,)``."""
    return np.array([pck(pred, gt, mask, t, norm) for t in thresholds])


def within_share(pred_norm: np.ndarray, gt_norm: np.ndarray, mask: np.ndarray, thr: float) -> float:
    """Share of predicted coordinates (x and y counted separately) within ``thr`` of the label, in the
    ``[-1, 1]`` units of the model input (the small-data tutorial's accuracy, seed 001: thresholds 0.1 and 0.01).
    """
    m = np.asarray(mask, bool)
    diff = np.abs(np.asarray(pred_norm) - np.asarray(gt_norm))[m]  # (M, 2)
    return float((diff < thr).mean()) if diff.size else float("nan")


def to_unit_coords(xy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Input pixels -> ``[-1, 1]`` (``-1`` and ``1`` at the outer edges of the first and last pixel)."""
    wh = np.asarray(size, np.float64)
    return (2.0 * (np.asarray(xy, np.float64) + 0.5) / wh - 1.0).astype(np.float32)


def keypoint_box_size(gt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Longer side of the tight box around each instance's labelled keypoints, ``(N,)`` (0 if < 2 points)."""
    out = np.zeros(len(gt))
    for i, (g, m) in enumerate(zip(gt, np.asarray(mask, bool), strict=True)):
        if m.sum() >= 2:
            p = g[m]
            out[i] = float((p.max(0) - p.min(0)).max())
    return out


def oks(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, area: np.ndarray | float,
        sigmas: Sequence[float]) -> np.ndarray:
    """Object keypoint similarity of each instance, COCO's definition (pycocotools ``COCOeval.computeOks``): the mean
    over labelled keypoints of ``exp(-d^2 / (2 * area * (2 sigma_k)^2))``.

    Args:
        pred, gt: ``(N, K, 2)`` pixels.
        mask: ``(N, K)`` labelled keypoints of ``gt``.
        area: ``(N,)`` or scalar object area in pixels^2 (a COCO annotation's ``area``; its scale ``s`` squared).
        sigmas: K per-keypoint sigmas (:attr:`handpose.skeleton.Skeleton.sigmas`, e.g. a COCO category's).

    Returns:
        ``(N,)`` OKS in ``[0, 1]``; NaN for an instance without labelled keypoints (pycocotools then measures the
        distance to the box instead).
    """
    p, g = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    m = np.asarray(mask, bool)
    var = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    a = np.broadcast_to(np.asarray(area, np.float64), (p.shape[0],))
    e = ((p - g) ** 2).sum(-1) / var[None] / (a[:, None] + np.spacing(1)) / 2.0
    n = m.sum(1)
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, np.where(m, np.exp(-e), 0.0).sum(1) / np.maximum(n, 1), np.nan)


def group_errors(errors: np.ndarray, groups: Sequence[str]) -> dict[str, float]:
    """Mean error per keypoint group (for hands: per finger), from ``(N, K)`` errors with NaN for unlabelled."""
    e = np.asarray(errors, np.float64)
    out = {}
    for g in dict.fromkeys(groups):
        cols = [k for k, name in enumerate(groups) if name == g]
        v = e[:, cols]
        out[g] = float(np.nanmean(v)) if np.any(~np.isnan(v)) else float("nan")
    return out
