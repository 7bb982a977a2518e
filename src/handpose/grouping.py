"""Grouping keypoint candidates into instances with part affinity fields (bottom-up models).

A pure function of the network output and the Skeleton, following OpenPose (Cao et al., CVPR 2017) as
implemented in Lightweight OpenPose (``modules/keypoints.py``: ``extract_keypoints`` and ``group_keypoints``),
whose thresholds are the defaults here: peak threshold 0.1, 10 samples per limb, a sample counts when its PAF
projection exceeds 0.05, a pair is a candidate when at least 80% of the samples count and its score is positive,
and instances with fewer than 3 keypoints or a mean keypoint score below 0.2 are dropped.
All coordinates here are map cells ``(x, y)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handpose.codecs.paf import limb_tree
from handpose.skeleton import Skeleton


def find_peaks(heatmap: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """Local maxima of one ``(H, W)`` heatmap above ``threshold`` (non-maximum suppression over the 8
    neighbours; of equal neighbours the first in row order wins), refined to sub-cell precision by a parabola
    through the log values on each axis.

    Returns:
        ``(P, 3)`` float64 rows ``(x, y, score)``, highest score first.
    """
    return find_all_peaks(heatmap[None], threshold)[0]


def find_all_peaks(heatmaps: np.ndarray, threshold: float = 0.1) -> list[np.ndarray]:
    """:func:`find_peaks` of every channel of ``(K, H, W)`` heatmaps at once; returns K ``(P, 3)`` arrays."""
    k, h, w = heatmaps.shape
    hm = heatmaps.astype(np.float64)
    pad = np.full((k, h + 2, w + 2), -np.inf)
    pad[:, 1:-1, 1:-1] = hm
    is_peak = hm > threshold
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            neighbour = pad[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            # strictly greater than neighbours after us, at least equal to those before (ties: one peak)
            is_peak &= hm > neighbour if (dy, dx) > (0, 0) else hm >= neighbour
    ks, ys, xs = np.nonzero(is_peak)
    rows = np.stack([xs + _offset(hm, ks, ys, xs, axis=2), ys + _offset(hm, ks, ys, xs, axis=1), hm[ks, ys, xs]],
                    axis=1)
    parts = np.split(rows, np.cumsum(np.bincount(ks, minlength=k))[:-1])
    return [p[np.argsort(-p[:, 2])] for p in parts]


def _offset(hm: np.ndarray, ks: np.ndarray, ys: np.ndarray, xs: np.ndarray, axis: int) -> np.ndarray:
    """Sub-cell offset of each peak along one axis (2: x, 1: y) of ``(K, H, W)`` maps: the vertex of the parabola
    through the log values of the peak and its two neighbours, clipped to +-0.5; 0 at the map border or where
    the log values are not strictly concave."""
    size = hm.shape[axis]
    pos = xs if axis == 2 else ys
    inside = (pos > 0) & (pos < size - 1)
    lo_pos, hi_pos = np.maximum(pos - 1, 0), np.minimum(pos + 1, size - 1)
    if axis == 2:
        lo, mid, hi = hm[ks, ys, lo_pos], hm[ks, ys, xs], hm[ks, ys, hi_pos]
    else:
        lo, mid, hi = hm[ks, lo_pos, xs], hm[ks, ys, xs], hm[ks, hi_pos, xs]
    lo, mid, hi = (np.log(np.maximum(v, 1e-10)) for v in (lo, mid, hi))
    curv = lo - 2 * mid + hi
    ok = inside & (curv < -1e-6)
    return np.where(ok, np.clip(0.5 * (lo - hi) / np.where(ok, curv, -1.0), -0.5, 0.5), 0.0)


def limb_candidates(paf: np.ndarray, peaks_a: np.ndarray, peaks_b: np.ndarray, samples: int = 10,
                    min_paf: float = 0.05, min_ratio: float = 0.8) -> list[tuple[float, int, int]]:
    """Score every pair of candidates for one limb by sampling its PAF along the segment from a to b.

    The score is the mean projection of the field on the segment's direction plus OpenPose's length prior
    ``min(0.5 H / length - 1, 0)``.

    Args:
        paf: ``(2, H, W)`` field of the limb.
        peaks_a, peaks_b: ``(P, 3)`` candidates of the limb's first and second keypoint.

    Returns:
        ``[(score, index_a, index_b), ...]`` of the pairs that pass, best first.
    """
    _, h, w = paf.shape
    if not len(peaks_a) or not len(peaks_b):
        return []
    # all pairs at once: (Pa, Pb) segments, (Pa, Pb, samples) points along each
    a = peaks_a[:, None, :2]
    d = peaks_b[None, :, :2] - a
    length = np.hypot(d[..., 0], d[..., 1])
    u = d / np.maximum(length, 1e-6)[..., None]
    t = np.linspace(0.0, 1.0, samples)
    pts = a[:, :, None, :] + t[None, None, :, None] * d[:, :, None, :]
    xi = np.clip(np.round(pts[..., 0]).astype(int), 0, w - 1)
    yi = np.clip(np.round(pts[..., 1]).astype(int), 0, h - 1)
    proj = paf[0, yi, xi] * u[..., 0, None] + paf[1, yi, xi] * u[..., 1, None]
    with np.errstate(divide="ignore"):
        prior = np.minimum(0.5 * h / length - 1.0, 0.0)
    score = proj.mean(-1) + prior
    keep = (length >= 1e-6) & ((proj > min_paf).mean(-1) >= min_ratio) & (score > 0)
    ia, ib = np.nonzero(keep)  # row-major: the order of a loop over a, then b
    order = np.argsort(-score[ia, ib], kind="stable")
    return [(float(score[ia[i], ib[i]]), int(ia[i]), int(ib[i])) for i in order]


@dataclass
class Instances:
    """Grouped instances of one image, in map cells.

    Attributes:
        keypoints: ``(M, K, 2)``; NaN for keypoints not found.
        scores: ``(M, K)`` peak values (0 where not found).
        instance_scores: ``(M,)`` mean score of the found keypoints.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    instance_scores: np.ndarray


def group(heatmaps: np.ndarray, pafs: np.ndarray, skeleton: Skeleton, root: int | None = None,
          peak_threshold: float = 0.1,
          samples: int = 10, min_paf: float = 0.05, min_ratio: float = 0.8, min_keypoints: int = 3,
          min_instance_score: float = 0.2) -> Instances:
    """Assemble instances from keypoint heatmaps and PAFs.

    Candidates of each keypoint are found with :func:`find_peaks` (all channels at once). Limbs are visited as a
    tree from ``root`` (:func:`handpose.codecs.paf.limb_tree`); for each, pairs are scored with
    :func:`limb_candidates` and matched greedily one-to-one (best score first). A matched pair extends the
    instance that holds its parent candidate, or starts a new instance. Instances with fewer than
    ``min_keypoints`` keypoints or a mean keypoint score below ``min_instance_score`` are dropped.

    Args:
        heatmaps: ``(K, H, W)`` or ``(K + 1, H, W)`` (a background channel is ignored).
        pafs: ``(2 L, H, W)`` for the Skeleton's L limbs.
        root: the keypoint the limb tree starts from; default the Skeleton's ``root`` (keypoint 0 unless the COCO
            category or the config names another). With cycles in the skeleton the root decides which limbs are
            used: those nearest to it.

    Raises:
        HandposeError: a disconnected Skeleton (from ``limb_tree``).
        ValueError: channel counts that do not match the Skeleton.
    """
    k = skeleton.num_keypoints
    if heatmaps.shape[0] not in (k, k + 1) or pafs.shape[0] != 2 * len(skeleton.limbs):
        raise ValueError(f"expected {k} (+1) heatmaps and {2 * len(skeleton.limbs)} PAF channels for skeleton "
                         f"{skeleton.name!r}, got {heatmaps.shape[0]} and {pafs.shape[0]}")
    peaks = find_all_peaks(heatmaps[:k], peak_threshold)
    assigned: list[np.ndarray] = []  # per instance: (K,) candidate index per keypoint, -1 if none
    holder: list[dict[int, np.ndarray]] = [{} for _ in range(k)]  # keypoint -> candidate -> its first instance
    for li, parent, child in limb_tree(skeleton, skeleton.root if root is None else root):
        a, b = skeleton.limbs[li]
        cands = limb_candidates(pafs[2 * li:2 * li + 2], peaks[a], peaks[b], samples, min_paf, min_ratio)
        used_a, used_b = set(), set()
        for _, ia, ib in cands:
            if ia in used_a or ib in used_b:
                continue
            used_a.add(ia)
            used_b.add(ib)
            ip, ic = (ia, ib) if parent == a else (ib, ia)
            owner = holder[parent].get(ip)
            if owner is None:
                owner = np.full(k, -1)
                owner[parent] = ip
                holder[parent][ip] = owner
                assigned.append(owner)
            if owner[child] == -1:
                owner[child] = ic
                holder[child].setdefault(ic, owner)
    kps, scs = [], []
    for inst in assigned:
        found = inst >= 0
        kp = np.full((k, 2), np.nan)
        sc = np.zeros(k)
        for j in np.where(found)[0]:
            kp[j] = peaks[j][inst[j], :2]
            sc[j] = peaks[j][inst[j], 2]
        if found.sum() < min_keypoints or sc[found].mean() < min_instance_score:
            continue
        kps.append(kp)
        scs.append(sc)
    if not kps:
        return Instances(np.zeros((0, k, 2)), np.zeros((0, k)), np.zeros(0))
    scores = np.stack(scs)
    inst_scores = np.array([s[s > 0].mean() for s in scores])
    order = np.argsort(-inst_scores)
    return Instances(np.stack(kps)[order], scores[order], inst_scores[order])
