"""Bottom-up data: whole images with all instances, ignore masks and mosaics of single-hand photos."""

import numpy as np
import pytest

from handpose import HAND21
from handpose.codecs.paf import PafCodec
from handpose.data import load_coco, load_freihand
from handpose.data.bottomup import BottomUpDataset, ignore_mask, mosaic
from handpose.grouping import group
from tests.conftest import DATA


def test_ignore_mask():
    m = ignore_mask(10, 20, np.array([[2.5, 1, 4, 3]]))
    assert m.sum() == 200 - 5 * 3 and m[1, 2] == 0 and m[4, 2] == 1


def test_mosaic_of_four_hand_photos_carries_labels(freihand_root):
    recs = load_freihand(freihand_root, "train", limit=4)
    img, kp, vis, mask = mosaic(recs, (256, 256))
    assert img.shape == (256, 256, 3) and kp.shape == (4, 21, 2) and vis.shape == (4, 21) and mask.min() == 1
    # 256x256 photos into 128x128 quarters: keypoints halve and shift by the quarter's corner
    np.testing.assert_allclose(kp[3], (recs[3].keypoints[0] + 0.5) / 2 - 0.5 + 128, atol=1e-3)
    # perfect targets of the mosaic group back into 4 hands at the labelled places
    codec = PafCodec(HAND21, (256, 256), stride=4, sigma=1.5)
    heat, pafs = codec.encode(kp, vis)
    inst = group(heat, pafs, HAND21)
    assert len(inst.keypoints) == 4
    found = codec.to_input(inst.keypoints)
    for k in kp:
        assert min(np.nanmax(np.linalg.norm(f - k, axis=1)) for f in found) < 2.0


def test_coco_people_dataset_masks_unlabelled_people():
    ann = DATA / "coco-person-mini" / "annotations" / "person_keypoints_val2017.json"
    if not ann.is_file():
        pytest.skip("coco-person-mini not present")
    records, skeleton = load_coco(ann, ann.parent.parent / "val2017", per_instance=False)
    codec = PafCodec(skeleton, (256, 256), stride=8)
    ds = BottomUpDataset(records, skeleton, codec)
    with_ignore = next(i for i, r in enumerate(records) if len(r.ignore_boxes))
    item = ds[with_ignore]
    assert item["heatmaps"].shape == (18, 32, 32) and item["pafs"].shape == (2 * len(skeleton.limbs), 32, 32)
    assert item["mask"].shape == (1, 32, 32) and item["mask"].min() < 1.0 and item["mask"].max() == 1.0
    # the background channel is 1 - max of the keypoint channels
    assert np.allclose(item["heatmaps"][17], 1 - item["heatmaps"][:17].max(0).values)
