"""Multi-hand composites: real hgcnn-freihand hands pasted into real coco-person-mini photos, keypoints moved along.

Measured here (hgcnn-freihand photos, coco-person-mini train2017 backgrounds):

- the pasted pixels are the hand's: at the 21 moved keypoints of a hand pasted at 3x without turning, the composite's
  colour is within 1.8 levels (mean over keypoints and channels; bound 6) of the source photo's at the source
  keypoint (bilinear resampling only);
- the top-down pipeline (shipped palm_detection_full + mediapipe_hand_full) finds a hand pasted at 150 px and
  20 degrees, 3.9 px from its moved labels (bound 10 px);
- 9 of the 28 train2017 photos have both wrists of every labelled person labelled (:func:`wrists_labelled`).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from handpose.data import load_coco, load_freihand
from handpose.data.composite import (
    CANVAS_SIZE,
    CompositeSource,
    HandCrop,
    background_regions,
    compose,
    hand_mask,
    keypoint_box,
    paste_affine,
    person_hand_regions,
    wrists_labelled,
    write_composites,
)
from handpose.data.image import read_image
from handpose.data.transforms import apply_affine
from handpose.errors import HandposeError
from handpose.skeleton import HAND21
from tests.conftest import DATA

PEOPLE = DATA / "coco-person-mini"


@pytest.fixture(scope="module")
def backgrounds():
    if not PEOPLE.is_dir():
        pytest.skip(f"{PEOPLE} not present")
    records, _ = load_coco(PEOPLE / "annotations" / "person_keypoints_train2017.json", PEOPLE / "train2017",
                           per_instance=False)
    return records


@pytest.fixture(scope="module")
def crops(freihand_root):
    return [HandCrop.from_record(r) for r in load_freihand(freihand_root, "train", limit=12)]


def test_hand_mask_covers_the_keypoints_not_the_photo(crops):
    c = crops[0]
    mask = hand_mask(c.image.shape[:2], c.keypoints, c.visible)
    xy = np.round(c.keypoints).astype(int)
    assert (mask[xy[:, 1].clip(0, 255), xy[:, 0].clip(0, 255)] >= 250).all()  # measured 253-255 (feathered)
    share = float((mask > 0).mean())
    assert 0.2 < share < 0.9, share  # the hand and a margin, not the whole 256 x 256 photo


def test_pasted_pixels_and_keypoints_move_together(crops, backgrounds):
    c = crops[3]
    bg = next(b for b in backgrounds if wrists_labelled(b))
    rng = np.random.default_rng(1)
    comp = compose(read_image(bg.image_path), [c], rng, background_regions(bg), hand_sizes=(150.0, 150.0),
                   max_rotation=0.0, mirror_prob=0.0)
    assert comp.image.shape == (CANVAS_SIZE[1], CANVAS_SIZE[0], 3) and comp.image.dtype == np.uint8
    kp = comp.keypoints[0]
    assert abs(max(keypoint_box(kp, comp.visible[0])[2:]) - 150.0) < 1e-3
    # the same scale and shift as the source: the colours at the moved keypoints are the source's
    src = c.image[np.round(c.keypoints[:, 1]).astype(int).clip(0, 255), np.round(c.keypoints[:, 0]).astype(int)
                  .clip(0, 255)].astype(float)
    got = comp.image[np.round(kp[:, 1]).astype(int), np.round(kp[:, 0]).astype(int)].astype(float)
    diff = float(np.abs(got - src).mean())
    print(f"colour at moved keypoints: mean difference {diff:.1f} levels")
    assert diff < 6.0


def test_turned_mirrored_affine_maps_the_keypoint_box_centre(crops):
    c = crops[0]
    M = paste_affine((300.0, 200.0), 100.0, math.radians(30), True, c)
    box = keypoint_box(c.keypoints, c.visible)
    assert np.allclose(apply_affine(M, (box[:2] + box[2:] / 2)[None])[0], (300.0, 200.0), atol=1e-3)
    assert np.linalg.det(M[:, :2]) < 0  # mirrored
    assert np.isclose(np.hypot(*M[:, 0]), 100.0 / max(box[2:]))


def test_eight_hands_apart_inside_and_off_the_people(crops, backgrounds):
    bg = next(b for b in backgrounds if wrists_labelled(b) and len(background_regions(b)) >= 4)
    rng = np.random.default_rng(0)
    comp = compose(read_image(bg.image_path), crops[:8], rng, background_regions(bg))
    assert comp.keypoints.shape == (8, 21, 2) and comp.visible.shape == (8, 21) and len(comp.sources) == 8
    w, h = CANVAS_SIZE
    assert (comp.keypoints >= 0).all() and (comp.keypoints[..., 0] <= w - 1).all()
    assert (comp.keypoints[..., 1] <= h - 1).all()
    boxes = comp.boxes
    for i in range(8):
        for j in range(i + 1, 8):
            x0, y0, bw, bh = boxes[i]
            x1, y1, cw, ch = boxes[j]
            assert not (x0 < x1 + cw and x1 < x0 + bw and y0 < y1 + ch and y1 < y0 + bh), (i, j)
        for x1, y1, cw, ch in comp.ignore_boxes:
            x0, y0, bw, bh = boxes[i]
            assert not (x0 < x1 + cw and x1 < x0 + bw and y0 < y1 + ch and y1 < y0 + bh), i
    again = compose(read_image(bg.image_path), crops[:8], np.random.default_rng(0), background_regions(bg))
    assert np.array_equal(again.image, comp.image)  # everything drawn from the rng


def test_written_composites_read_back_by_load_coco(crops, backgrounds, tmp_path):
    bg = next(b for b in backgrounds if wrists_labelled(b))
    rng = np.random.default_rng(2)
    made = [compose(read_image(bg.image_path), crops[i:i + n], rng, background_regions(bg))
            for i, n in ((0, 1), (1, 4))]
    ann = write_composites(made, tmp_path, HAND21, prefix="c")
    data = json.loads(ann.read_text())
    assert [im["file_name"] for im in data["images"]] == ["c_0000.png", "c_0001.png"]
    records, skeleton = load_coco(ann, tmp_path, per_instance=False)
    assert skeleton.num_keypoints == 21 and [len(r.keypoints) for r in records] == [1, 4]
    assert np.allclose(records[1].keypoints, made[1].keypoints, atol=1e-3)
    assert len(records[1].ignore_boxes) == len(made[1].ignore_boxes) > 0  # crowd annotations: ignore regions
    assert np.array_equal(read_image(tmp_path / "c_0001.png"), made[1].image)  # lossless


def test_person_hand_regions_hold_each_labelled_wrist(backgrounds):
    usable = [b for b in backgrounds if wrists_labelled(b)]
    assert len(usable) == 9 and len(backgrounds) == 28
    for r in backgrounds:
        regions = person_hand_regions(r.keypoints, r.visible)
        wrists = [r.keypoints[i, w] for i in range(len(r.keypoints)) for w in (9, 10) if r.visible[i, w] > 0]
        assert len(regions) == len(wrists), r.record_id
        for (x, y, w, h), (wx, wy) in zip(regions, wrists, strict=True):
            assert x <= wx <= x + w and y <= wy <= y + h and w >= 12


def test_pipeline_finds_a_pasted_hand(crops, backgrounds):
    from handpose.detect.topdown import TopDownPipeline

    bg = next(b for b in backgrounds if wrists_labelled(b))
    comp = compose(read_image(bg.image_path), [crops[5]], np.random.default_rng(3), background_regions(bg),
                   hand_sizes=(150.0, 150.0), max_rotation=20.0)
    res = TopDownPipeline("full", "mediapipe_hand_full")(comp.image)
    err = np.linalg.norm(res.keypoints - comp.keypoints[0], axis=-1).mean(axis=-1)
    print(f"{len(res.keypoints)} hands, closest {err.min():.2f} px from the moved labels")
    assert err.min() < 10.0


def test_bad_inputs_raise(crops, backgrounds):
    with pytest.raises(HandposeError, match="expected \\(H, W, 3\\)"):
        compose(np.zeros((10, 10), np.uint8), crops[:1], np.random.default_rng(0))
    r = load_freihand(DATA / "hgcnn-freihand", "train", limit=1)[0]
    r.visible[0, 2:] = 0
    with pytest.raises(HandposeError, match="fewer than 3 labelled keypoints"):
        HandCrop.from_record(r)


def _scale(src: np.ndarray, dst: np.ndarray) -> float:
    """The similarity scale between two ``(K, 2)`` keypoint sets (turn- and mirror-free): ratio of their spreads."""
    return float(np.linalg.norm(dst - dst.mean(0)) / np.linalg.norm(src - src.mean(0)))


def test_composite_source_draws_hands_of_one_size_off_the_people(freihand_root, backgrounds):
    hands = load_freihand(freihand_root, "train", limit=12)
    usable = [b for b in backgrounds if wrists_labelled(b)]
    source = CompositeSource(hands, usable, count=(2, 4), hand_sizes=(20.0, 40.0))
    by_name = {r.record_id: r for r in hands}
    rng = np.random.default_rng(3)
    for _ in range(6):
        comp = source.draw(rng, (256, 256))
        assert comp.image.shape == (256, 256, 3) and 2 <= len(comp.keypoints) <= 4
        sizes = []
        for name, kp, vis in zip(comp.sources, comp.keypoints, comp.visible, strict=True):
            src = by_name[name]
            sizes.append(_scale(src.keypoints[0], kp) * max(keypoint_box(src.keypoints[0], src.visible[0])[2:]))
            assert np.array_equal(vis, src.visible[0])
            cx, cy = kp.mean(0)
            assert not any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in comp.ignore_boxes)
        # one size per composite, each hand within 0.8-1.25 x of it, the size within the range
        assert 0.8 * 20.0 - 1e-3 <= min(sizes) and max(sizes) <= 1.25 * 40.0 + 1e-3, sizes
        assert max(sizes) / min(sizes) <= 1.25 / 0.8 + 1e-6, sizes
    again = CompositeSource(hands, usable, count=(2, 4), hand_sizes=(20.0, 40.0)).draw(np.random.default_rng(3),
                                                                                       (256, 256))
    assert np.array_equal(again.image, source.draw(np.random.default_rng(3), (256, 256)).image)


def test_composite_source_weights_pick_the_hands(freihand_root, backgrounds):
    hands = load_freihand(freihand_root, "train", limit=4)
    usable = [b for b in backgrounds if wrists_labelled(b)]
    source = CompositeSource(hands, usable, np.array([0.0, 0.0, 1.0, 0.0]), count=(1, 1))
    rng = np.random.default_rng(0)
    assert {source.draw(rng, (128, 128)).sources[0] for _ in range(5)} == {hands[2].record_id}
    with pytest.raises(HandposeError, match="hands and backgrounds"):
        CompositeSource([], usable)
    with pytest.raises(HandposeError, match="ranges"):
        CompositeSource(hands, usable, count=(3, 2))
    with pytest.raises(HandposeError, match="weights"):
        CompositeSource(hands, usable, np.array([1.0]))
