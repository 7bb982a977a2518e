"""Losses. Shapes: prediction and target ``(B, K, ...)`` (heatmaps ``(B, K, H, W)`` or coordinates ``(B, K, 2)``);
optional keypoint weights ``(B, K)``, 0 for unlabelled keypoints. Each returns a scalar tensor."""

from __future__ import annotations

import torch


def _weighted_mean(per_map: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return per_map.mean()
    return (per_map * weights).sum() / weights.sum().clamp(min=1.0)


def iou_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
             eps: float = 1e-6) -> torch.Tensor:
    """Soft IoU loss of the hand pose tutorial (seed 003):
    ``1 - mean((sum y*p + eps) / (sum y^2 + sum p^2 - sum y*p + eps))``, sums over H and W.

    Returns 0 for a perfect prediction; in ``[0, 1]`` for non-negative maps.
    """
    inter = (pred * target).sum(dim=(2, 3))
    union = (target * target).sum(dim=(2, 3)) + (pred * pred).sum(dim=(2, 3)) - inter
    return 1.0 - _weighted_mean((inter + eps) / (union + eps), weights)


def mse_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error per element (heatmap pixel or coordinate), averaged over labelled keypoints
    (heatmaps: Simple Baselines)."""
    return _weighted_mean(((pred - target) ** 2).flatten(2).mean(-1), weights)


def l1_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error per element, averaged over labelled keypoints (the small-data tutorial's loss on
    ``[-1, 1]`` coordinates)."""
    return _weighted_mean((pred - target).abs().flatten(2).mean(-1), weights)


def masked_l2(outputs, heatmaps: torch.Tensor, pafs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Lightweight OpenPose's loss: for every stage, ``sum((pred - target)^2 * mask) / 2 / B`` for the heatmaps
    and for the PAFs, summed over stages.

    Args:
        outputs: per stage ``(heatmaps (B, K + 1, H, W), pafs (B, 2 L, H, W))``.
        heatmaps, pafs: targets of the same shapes.
        mask: ``(B, 1, H, W)``, 0 on crowd and unlabelled people (their cells do not count).
    """
    b = heatmaps.shape[0]
    total = heatmaps.new_zeros(())
    for hm, paf in outputs:
        total = total + (((hm - heatmaps) ** 2) * mask).sum() / 2 / b + (((paf - pafs) ** 2) * mask).sum() / 2 / b
    return total


LOSSES = {"iou": iou_loss, "mse": mse_loss, "l1": l1_loss}
#: The losses that make sense for each output kind.
LOSSES_FOR = {"heatmap": ("iou", "mse"), "regression": ("l1", "mse"), "paf": ("l2",)}
