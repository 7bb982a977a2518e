"""Bottom-up targets: keypoint heatmaps with a background channel and part affinity fields (PAFs).

Follows OpenPose (Cao et al., CVPR 2017; TPAMI 2019) as in Lightweight OpenPose (Osokin, 2018): at the network
stride, K keypoint heatmaps (Gaussian peaks, the maximum over instances) plus a background channel
``1 - max_k heatmap_k``, and for each limb a 2-channel field holding the limb's unit vector on every cell within
``paf_width`` cells of the segment, averaged over the instances that cover a cell. Everything is sized from the
Skeleton: K + 1 heatmap channels and 2 per limb.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from handpose.errors import HandposeError
from handpose.skeleton import Skeleton


def limb_tree(skeleton: Skeleton, root: int = 0) -> list[tuple[int, int, int]]:
    """Order the Skeleton's limbs as a breadth-first tree from ``root`` for grouping.

    Returns:
        ``[(limb_index, parent_keypoint, child_keypoint), ...]``: every keypoint but the root is the child of
        exactly one limb, and each parent comes before its children. Limbs that close a cycle are left out.

    Raises:
        HandposeError: the root is out of range, or some keypoint cannot be reached from the root (a skeleton
            whose limbs would split one instance into disjoint pieces); the message names them.
    """
    k = skeleton.num_keypoints
    if not 0 <= root < k:
        raise HandposeError(f"skeleton {skeleton.name!r}: root keypoint {root} is not in 0..{k - 1}")
    adjacent: dict[int, list[tuple[int, int]]] = {i: [] for i in range(k)}
    for li, (a, b) in enumerate(skeleton.limbs):
        adjacent[a].append((li, b))
        adjacent[b].append((li, a))
    seen = {root}
    order = []
    queue = deque([root])
    while queue:
        p = queue.popleft()
        for li, c in sorted(adjacent[p]):
            if c not in seen:
                seen.add(c)
                order.append((li, p, c))
                queue.append(c)
    if len(seen) != k:
        lost = [skeleton.keypoints[i] for i in range(k) if i not in seen]
        raise HandposeError(f"skeleton {skeleton.name!r} is disconnected: keypoints {lost} cannot be reached from "
                            f"{skeleton.keypoints[root]!r} through its limbs; add limbs that join them")
    return order


@dataclass(frozen=True)
class PafCodec:
    """Encode all instances of an image as heatmaps + PAFs at the network stride.

    Args:
        skeleton: keypoints and limbs.
        input_size: ``(width, height)`` of the network input in pixels.
        stride: input pixels per output cell (8 in Lightweight OpenPose).
        sigma: Gaussian sigma of the keypoint peaks, in cells.
        paf_width: half-width of a limb's field, in cells (Lightweight OpenPose: 1).
        upsample: decoding only: the maps are enlarged this many times (bicubic) before peak finding and grouping,
            so peaks and PAF samples fall on a finer grid (Osokin's ``val.py`` enlarges by the stride; on
            coco-person-mini val the imported COCO model scores AP 0.409 with 4 against 0.392 with 1).
    """

    skeleton: Skeleton
    input_size: tuple[int, int]
    stride: int = 8
    sigma: float = 1.0
    paf_width: float = 1.0
    upsample: int = 1
    kind = "paf"

    @property
    def map_size(self) -> tuple[int, int]:
        """``(width, height)`` of the output maps."""
        return (self.input_size[0] // self.stride, self.input_size[1] // self.stride)

    @property
    def num_heatmaps(self) -> int:
        """K + 1 (the last channel is the background)."""
        return self.skeleton.num_keypoints + 1

    @property
    def num_pafs(self) -> int:
        """2 per limb: x then y component."""
        return 2 * len(self.skeleton.limbs)

    def to_map(self, xy: np.ndarray) -> np.ndarray:
        """Input pixels -> map cells (cell centres at ``(j + 0.5) * stride - 0.5``)."""
        return (np.asarray(xy, np.float64) + 0.5) / self.stride - 0.5

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """Map cells -> input pixels."""
        return (np.asarray(xy, np.float64) + 0.5) * self.stride - 0.5

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Targets for all instances of one image.

        Args:
            keypoints: ``(N, K, 2)`` input pixels (N may be 0).
            visible: ``(N, K)`` COCO visibility; keypoints with 0 are left out (and limbs touching them).

        Returns:
            ``heatmaps`` ``(K + 1, H, W)`` and ``pafs`` ``(2 L, H, W)``, float32.
        """
        w, h = self.map_size
        k = self.skeleton.num_keypoints
        kp = self.to_map(np.asarray(keypoints, np.float64).reshape(-1, k, 2))
        vis = np.asarray(visible).reshape(-1, k) > 0
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        heat = np.zeros((k + 1, h, w), np.float32)
        for n in range(len(kp)):
            for j in np.where(vis[n])[0]:
                g = np.exp(-((xs - kp[n, j, 0]) ** 2 + (ys - kp[n, j, 1]) ** 2) / (2 * self.sigma**2))
                np.maximum(heat[j], g, out=heat[j])
        heat[k] = 1.0 - heat[:k].max(axis=0) if k else 1.0
        pafs = np.zeros((self.num_pafs, h, w), np.float32)
        for li, (a, b) in enumerate(self.skeleton.limbs):
            total = np.zeros((2, h, w))
            count = np.zeros((h, w))
            for n in range(len(kp)):
                if not (vis[n, a] and vis[n, b]):
                    continue
                v = kp[n, b] - kp[n, a]
                length = float(np.hypot(*v))
                if length < 1e-6:
                    continue
                u = v / length
                dx, dy = xs - kp[n, a, 0], ys - kp[n, a, 1]
                along = dx * u[0] + dy * u[1]
                across = np.abs(dx * u[1] - dy * u[0])
                on = (along >= -self.paf_width) & (along <= length + self.paf_width) & (across <= self.paf_width)
                total[0][on] += u[0]
                total[1][on] += u[1]
                count[on] += 1
            covered = count > 0
            pafs[2 * li][covered] = total[0][covered] / count[covered]
            pafs[2 * li + 1][covered] = total[1][covered] / count[covered]
        return heat, pafs

    def decode(self, output, **group_kwargs) -> list[tuple[np.ndarray, np.ndarray]]:
        """Group the last stage of a bottom-up network's output into instances, per image.

        Args:
            output: per stage ``(heatmaps (B, K + 1, h, w), pafs (B, 2 L, h, w))`` tensors (the last is used).
            **group_kwargs: thresholds for :func:`handpose.grouping.group`.

        Returns:
            Per image ``(keypoints (N, K, 2) input pixels, NaN where not found; scores (N, K))``.
        """
        from handpose.grouping import group

        heatmaps, pafs = (t.detach().float().cpu() for t in output[-1])
        if self.upsample > 1:
            import torch.nn.functional as F

            heatmaps, pafs = (F.interpolate(t, scale_factor=self.upsample, mode="bicubic", align_corners=False)
                              for t in (heatmaps, pafs))
        step = self.stride / self.upsample  # input pixels per decoded cell
        out = []
        for hm, paf in zip(heatmaps.numpy(), pafs.numpy(), strict=True):
            inst = group(hm, paf, self.skeleton, **group_kwargs)
            xy = (np.asarray(inst.keypoints, np.float64) + 0.5) * step - 0.5
            out.append((xy.astype(np.float32), inst.scores.astype(np.float32)))
        return out
