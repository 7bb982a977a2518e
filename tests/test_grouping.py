"""PAF targets and grouping on synthetic maps where the right answer is known."""

import numpy as np
import pytest

from handpose import HAND21, HandposeError, Skeleton
from handpose.codecs.paf import PafCodec, limb_tree
from handpose.grouping import find_peaks, group

# a 5-keypoint "hand": palm centre 0 and four fingertips, 4 limbs from the centre
STAR = Skeleton("star", ("centre", "a", "b", "c", "d"), ((0, 1), (0, 2), (0, 3), (0, 4)))


def _hand(cx, cy, scale, angle=0.0):
    """HAND21-like points: wrist at (cx, cy), five fingers fanned upwards, rotated by angle (radians)."""
    pts = [(0.0, 0.0)]
    for a in np.linspace(-0.9, 0.9, 5):
        for j in range(1, 5):
            r = 0.35 + 0.15 * j
            pts.append((r * np.sin(a), -r * np.cos(a)))
    pts = np.array(pts) * scale
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (pts @ rot.T + (cx, cy)).astype(np.float32)


def _match(found, truth, tol):
    """For each true instance, the found instance within tol on all keypoints (by index), or None."""
    out = []
    for t in truth:
        hit = [i for i, f in enumerate(found) if np.nanmax(np.linalg.norm(f - t, axis=1)) < tol]
        out.append(hit[0] if hit else None)
    return out


def test_limb_tree_orders_parents_first_and_rejects_pieces():
    order = limb_tree(HAND21)
    assert len(order) == 20 and order[0][1] == 0
    reached = {0}
    for _, p, c in order:
        assert p in reached
        reached.add(c)
    broken = Skeleton("broken", ("a", "b", "c", "d"), ((0, 1), (2, 3)))
    with pytest.raises(HandposeError, match=r"disconnected: keypoints \['c', 'd'\]"):
        limb_tree(broken)
    with pytest.raises(HandposeError, match="root keypoint 9"):
        limb_tree(STAR, root=9)


def test_paf_targets():
    codec = PafCodec(STAR, (64, 64), stride=4, sigma=1.0, paf_width=1.0)
    kp = np.array([[[30.0, 30.0], [30.0, 6.0], [54.0, 30.0], [30.0, 54.0], [6.0, 30.0]]])
    heat, paf = codec.encode(kp, np.full((1, 5), 2))
    assert heat.shape == (6, 16, 16) and paf.shape == (8, 16, 16)
    c = codec.to_map(kp[0, 0])  # centre at cell (7.125, 7.125)
    assert heat[0].max() == pytest.approx(np.exp(-(2 * 0.125**2) / 2), abs=1e-6)
    assert np.allclose(heat[5], 1 - heat[:5].max(axis=0))
    # limb 0 points up (0, -1) on the cells between centre and tip, nothing far away
    yy = int(round(c[1])) - 3
    assert paf[0, yy, 7] == pytest.approx(0.0) and paf[1, yy, 7] == pytest.approx(-1.0)
    assert paf[:2, yy, 12].tolist() == [0.0, 0.0]
    # unlabelled keypoints: no peak and no field for their limbs
    vis = np.full((1, 5), 2)
    vis[0, 1] = 0
    heat, paf = codec.encode(kp, vis)
    assert heat[1].max() == 0 and np.abs(paf[:2]).max() == 0


def test_two_crossing_hands_are_separated():
    codec = PafCodec(HAND21, (256, 256), stride=4, sigma=1.5)
    truth = np.stack([_hand(110, 200, 150, 0.35), _hand(150, 200, 150, -0.35)])  # fingers cross each other
    heat, paf = codec.encode(truth, np.full((2, 21), 2))
    inst = group(heat, paf, HAND21)
    assert len(inst.keypoints) == 2
    found = codec.to_input(inst.keypoints)
    assert None not in _match(found, truth, tol=2.0)
    assert np.all(inst.scores > 0.9)


def test_missing_limb_and_border_instance():
    codec = PafCodec(STAR, (128, 128), stride=4, sigma=1.0)
    a = np.array([[40, 60], [40, 30], [70, 60], [40, 90], [10, 60]], np.float32)
    b = np.array([[0, 20], [0, 0], [30, 20], [0, 50], [0, 0]], np.float32)  # at the image border
    vis = np.full((2, 5), 2)
    vis[0, 2] = 0  # instance a has no keypoint 2
    vis[1, 4] = 0
    heat, paf = codec.encode(np.stack([a, b]), vis)
    inst = group(heat, paf, STAR)
    assert len(inst.keypoints) == 2
    found = codec.to_input(inst.keypoints)
    ia, ib = (int(np.argmin([np.nanmean(np.linalg.norm(f - t, axis=1)) for f in found])) for t in (a, b))
    assert ia != ib
    assert np.isnan(found[ia, 2]).all() and inst.scores[ia, 2] == 0
    assert np.nanmax(np.linalg.norm(found[ia] - a, axis=1)) < 1.5
    assert np.nanmax(np.linalg.norm(found[ib] - b, axis=1)) < 2.5


def test_thresholds_drop_weak_instances():
    codec = PafCodec(STAR, (128, 128), stride=4, sigma=1.0)
    a = np.array([[40, 60], [40, 30], [70, 60], [40, 90], [10, 60]], np.float32)
    heat, paf = codec.encode(a[None], np.full((1, 5), 2))
    assert len(group(heat * 0.15, paf, STAR).keypoints) == 0          # mean score 0.15 < 0.2
    assert len(group(heat * 0.15, paf, STAR, min_instance_score=0.1).keypoints) == 1
    assert len(group(heat, paf * 0.0, STAR).keypoints) == 0            # no field: nothing joins
    with pytest.raises(ValueError, match="PAF channels"):
        group(heat, paf[:4], STAR)


def test_find_peaks_plateau_gives_one_peak():
    h = np.zeros((8, 8))
    h[3, 3] = h[3, 4] = 0.9
    p = find_peaks(h)
    assert len(p) == 1 and p[0, 2] == pytest.approx(0.9)


@pytest.mark.parametrize("upsample", [1, 4])
def test_decode_with_enlarged_maps_maps_back_to_input_pixels(upsample):
    import dataclasses

    import torch

    codec = PafCodec(HAND21, (256, 256), stride=8, sigma=1.0, upsample=upsample)
    truth = np.stack([_hand(80, 200, 110, 0.2), _hand(170, 190, 100, -0.3)])  # inside the border cells
    heat, paf = codec.encode(truth, np.full((2, 21), 2))
    out = [(torch.from_numpy(heat)[None], torch.from_numpy(paf)[None])]
    (found, scores), = codec.decode(out)
    assert len(found) == 2 and None not in _match(found, truth, tol=4.0)
    # enlarging the maps finds the same instances as decoding at the stride, with sub-cell positions
    (plain, _), = dataclasses.replace(codec, upsample=1).decode(out)
    assert np.nanmax(np.abs(np.sort(found[:, 0, 0]) - np.sort(plain[:, 0, 0]))) < 4.0
