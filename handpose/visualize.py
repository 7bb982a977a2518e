"""Drawing skeletons (one colour per finger) and evaluation plots."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from handpose.data.image import read_image
from handpose.errors import HandposeError
from handpose.skeleton import Skeleton


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, skeleton: Skeleton, scores: np.ndarray | None = None,
                  min_score: float | None = None, thickness: int | None = None) -> np.ndarray:
    """Draw instances on a copy of an RGB image: limbs in their group's colour, keypoints as dots.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        keypoints: ``(N, K, 2)`` or ``(K, 2)`` pixels.
        skeleton: limbs and colours.
        scores: ``(N, K)`` scores; with ``min_score``, keypoints below it (and their limbs) are not drawn.
        thickness: line width in pixels (default: scaled to the image size).

    Returns:
        The drawn ``(H, W, 3)`` uint8 RGB image.
    """
    out = np.ascontiguousarray(image.copy())
    kps = np.asarray(keypoints, np.float32)
    if kps.ndim == 2:
        kps = kps[None]
    sc = None if scores is None else np.asarray(scores, np.float32).reshape(kps.shape[:2])
    t = thickness or max(1, round(max(image.shape[:2]) / 200))
    for n, kp in enumerate(kps):
        shown = np.isfinite(kp).all(axis=1)
        if sc is not None and min_score is not None:
            shown &= sc[n] >= min_score
        for a, b in skeleton.limbs:
            if shown[a] and shown[b]:
                cv2.line(out, tuple(int(round(v)) for v in kp[a]), tuple(int(round(v)) for v in kp[b]),
                         skeleton.limb_colour((a, b)), t, cv2.LINE_AA)
        for k, p in enumerate(kp):
            if shown[k]:
                cv2.circle(out, (int(round(p[0])), int(round(p[1]))), t + 1, skeleton.colour_of(k), -1, cv2.LINE_AA)
    return out


def save_image(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB image (format from the suffix).

    Raises:
        HandposeError: the folder cannot be created or OpenCV cannot write the file (it returns False, no error).
    """
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        ok = cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    except (OSError, cv2.error) as e:
        raise HandposeError(f"{path}: cannot write the image ({e})") from e
    if not ok:
        raise HandposeError(f"{path}: cannot write the image (no permission, full disk or unknown suffix)")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pck_curve(evaluation, path: str | Path, max_px: float = 30.0) -> None:
    """PCK against an absolute threshold of 0-``max_px`` original pixels."""
    from handpose import metrics

    plt = _plt()
    thr = np.linspace(0, max_px, 61)
    curve = metrics.pck_curve(evaluation.pred, evaluation.gt, evaluation.mask, thr, 1.0)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(thr, curve)
    ax.set(xlabel="threshold, px", ylabel="PCK", ylim=(0, 1.01), title="PCK curve")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_per_keypoint_error(summary: dict, path: str | Path) -> None:
    """Bar chart of the mean error per keypoint, in original pixels."""
    plt = _plt()
    names = list(summary["per_keypoint_px"])
    vals = [summary["per_keypoint_px"][n] for n in names]
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * len(names)), 4))
    ax.bar(range(len(names)), vals)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set(ylabel="mean error, px", title="error per keypoint")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_worst_images(evaluation, skeleton: Skeleton, path: str | Path, count: int = 4) -> None:
    """The images with the largest mean error: ground truth (left) beside prediction (right)."""
    plt = _plt()
    per_image = np.nanmean(evaluation.errors_px, axis=1)
    order = np.argsort(-np.nan_to_num(per_image, nan=-1))[:count]
    fig, axes = plt.subplots(len(order), 2, figsize=(6, 3 * len(order)), squeeze=False)
    for row, i in enumerate(order):
        img = read_image(evaluation.files[i])
        gt = np.where(evaluation.mask[i][:, None], evaluation.gt[i], np.nan)
        for col, (kp, title) in enumerate(((gt, "ground truth"), (evaluation.pred[i], f"prediction, "
                                                                    f"{per_image[i]:.1f} px"))):
            axes[row, col].imshow(draw_skeleton(img, kp, skeleton))
            axes[row, col].set_title(f"{Path(evaluation.files[i]).name}: {title}", fontsize=8)
            axes[row, col].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_comparison(image: np.ndarray, gt: np.ndarray, pred: np.ndarray, mask: np.ndarray,
                    radius: int | None = None) -> np.ndarray:
    """Labels as green dots, predictions as red dots, joined by a thin white line (the small-data tutorial's
    picture). ``gt``, ``pred``: ``(K, 2)`` pixels; ``mask``: ``(K,)`` labelled keypoints."""
    out = np.ascontiguousarray(image.copy())
    r = radius or max(2, round(max(image.shape[:2]) / 120))
    for g, p, m in zip(np.asarray(gt), np.asarray(pred), np.asarray(mask, bool), strict=True):
        pi = (int(round(p[0])), int(round(p[1])))
        if m:
            gi = (int(round(g[0])), int(round(g[1])))
            cv2.line(out, gi, pi, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.circle(out, gi, r, (0, 200, 0), -1, cv2.LINE_AA)
        cv2.circle(out, pi, r, (230, 0, 0), -1, cv2.LINE_AA)
    return out


def plot_gallery(evaluation, path: str | Path, count: int = 9) -> None:
    """The first ``count`` evaluated images: labels (green) beside predictions (red), with the mean error."""
    plt = _plt()
    n = min(count, len(evaluation.files))
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    errors = np.nanmean(evaluation.errors_px, axis=1)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = read_image(evaluation.files[i])
        ax.imshow(draw_comparison(img, evaluation.gt[i], evaluation.pred[i], evaluation.mask[i]))
        ax.set_title(f"{Path(evaluation.files[i]).name}: {errors[i]:.1f} px", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
