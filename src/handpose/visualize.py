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


def crop_view(evaluation, i: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Record ``i``'s image cut to the region its prediction looked at, for display.

    The region is ``evaluation.boxes[i]`` (the record's box with its crop margin; the whole image when the
    evaluation has no boxes), fitted into a ``size`` x ``size`` square as the model input is
    (:func:`handpose.data.transforms.box_to_input_affine`, black letterbox).

    Args:
        evaluation: a :class:`handpose.evaluate.Evaluation`.
        i: record index.
        size: side of the returned picture in pixels.

    Returns:
        ``(image (size, size, 3) uint8 RGB, M (2, 3))``, ``M`` mapping original pixels to the picture (apply it to
        the keypoints with :func:`handpose.data.transforms.apply_affine`).

    Raises:
        HandposeError: the image cannot be read (from :func:`handpose.data.image.read_image`).
    """
    from handpose.data.transforms import box_to_input_affine, full_image_box, warp_to_input

    img = read_image(evaluation.files[i])
    box = evaluation.boxes[i] if evaluation.boxes is not None else full_image_box(img.shape[1], img.shape[0])
    M = box_to_input_affine(box, (size, size))
    return warp_to_input(img, M, (size, size)), M


def plot_worst_images(evaluation, skeleton: Skeleton, path: str | Path, count: int = 5) -> None:
    """The records with the largest mean error (as ``worst_images`` of the summary), worst first: ground truth
    (left) beside prediction (right), each on the hand crop the model saw (:func:`crop_view`), not the whole
    photo."""
    from handpose.data.transforms import apply_affine

    plt = _plt()
    per_image = evaluation.image_errors_px
    order = evaluation.worst_indices(count)
    fig, axes = plt.subplots(len(order), 2, figsize=(6, 3 * len(order)), squeeze=False)
    for row, i in enumerate(order):
        img, M = crop_view(evaluation, i)
        gt = np.where(evaluation.mask[i][:, None], apply_affine(M, evaluation.gt[i]), np.nan)
        pred = apply_affine(M, evaluation.pred[i])
        for col, (kp, title) in enumerate(((gt, "ground truth"), (pred, f"prediction, {per_image[i]:.1f} px"))):
            axes[row, col].imshow(draw_skeleton(img, kp, skeleton))
            axes[row, col].set_title(f"{evaluation.record_ids[i] or Path(evaluation.files[i]).name}\n{title}",
                                     fontsize=7)
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


def spread_indices(errors: np.ndarray, files: list[str], count: int) -> np.ndarray:
    """Up to ``count`` records spread over the error distribution, for a gallery that shows good, typical and bad
    predictions rather than the first files.

    The labelled records are ranked by error; the picks are the ranks nearest to ``count`` evenly spaced
    quantiles (0 = best, 1 = worst), each taken from an image file not picked yet when there is one (a COCO photo
    holds several hands).

    Args:
        errors: ``(N,)`` mean error per record (NaN: unlabelled, never picked).
        files: ``N`` image files.
        count: how many to pick.

    Returns:
        Record indices, best first (fewer than ``count`` when there are fewer labelled records).
    """
    errors = np.asarray(errors, np.float64)
    ranked = [int(i) for i in np.argsort(errors, kind="stable") if np.isfinite(errors[i])]
    n = min(count, len(ranked))
    if n == 0:
        return np.zeros(0, np.int64)
    picked, used_files = [], set()
    for target in np.linspace(0, len(ranked) - 1, n):
        # nearest free rank to the target, a new file first; ties go to the better rank
        free = sorted((r for r in range(len(ranked)) if ranked[r] not in picked), key=lambda r: abs(r - target))
        fresh = [r for r in free if files[ranked[r]] not in used_files]
        r = (fresh or free)[0]
        picked.append(ranked[r])
        used_files.add(files[ranked[r]])
    return np.asarray(sorted(picked, key=lambda i: (errors[i], i)), np.int64)


def plot_gallery(evaluation, path: str | Path, count: int = 9) -> None:
    """``count`` records spread from the best to the worst error (:func:`spread_indices`), on their hand crops
    (:func:`crop_view`): labels (green) beside predictions (red), with the mean error and its rank."""
    from handpose.data.transforms import apply_affine

    plt = _plt()
    errors = evaluation.image_errors_px
    picks = spread_indices(errors, evaluation.files, count)
    n_ranked = int(np.isfinite(errors).sum())
    rank = {int(i): r + 1 for r, i in enumerate(np.argsort(errors, kind="stable")[:n_ranked])}
    n = len(picks)
    cols = max(1, min(3, n))
    rows = max(1, (n + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, picks, strict=False):
        img, M = crop_view(evaluation, i)
        ax.imshow(draw_comparison(img, apply_affine(M, evaluation.gt[i]), apply_affine(M, evaluation.pred[i]),
                                  evaluation.mask[i]))
        ax.set_title(f"{evaluation.record_ids[i] or Path(evaluation.files[i]).name}\n{errors[i]:.1f} px "
                     f"(rank {rank[int(i)]} of {n_ranked})", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
