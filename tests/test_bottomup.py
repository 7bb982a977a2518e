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
    assert ignore_mask(10, 20, np.array([[-9, -9, 4, 4]])).min() == 1  # entirely outside: nothing masked


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


def test_custom_skeleton_bottom_up_trains_from_config_and_predicts(freihand_root, tmp_path):
    """5 keypoints, 4 limbs, several hands per image: a generated COCO file, a config, no code."""
    import json

    import cv2
    from typer.testing import CliRunner

    from handpose import load_model, predict
    from handpose.cli import app

    recs = load_freihand(freihand_root, "train", limit=32)
    tips = [0, 8, 12, 16, 20]
    images, anns = [], []
    (tmp_path / "img").mkdir()
    for n in range(8):
        img, kp, vis, _ = mosaic(recs[4 * n:4 * n + 4], (128, 128))
        cv2.imwrite(str(tmp_path / "img" / f"{n}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        images.append({"id": n, "file_name": f"{n}.png", "width": 128, "height": 128})
        for j, hand in enumerate(kp[:, tips]):
            x0, y0 = hand.min(0)
            x1, y1 = hand.max(0)
            anns.append({"id": 10 * n + j, "image_id": n, "category_id": 1, "iscrowd": 0, "num_keypoints": 5,
                         "keypoints": np.concatenate([hand, np.full((5, 1), 2)], 1).reshape(-1).round(2).tolist(),
                         "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                         "area": float((x1 - x0) * (y1 - y0))})
    cat = {"id": 1, "name": "tips", "keypoints": ["wrist", "index", "middle", "ring", "little"],
           "skeleton": [[1, 2], [1, 3], [1, 4], [1, 5]]}
    for name, ids in (("train", range(6)), ("val", range(6, 8))):
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "images": [images[i] for i in ids], "annotations": [a for a in anns if a["image_id"] in ids],
            "categories": [cat]}))
    config = tmp_path / "multi.yaml"
    config.write_text(f"""
dataset: coco
train_ann: {tmp_path / 'train.json'}
train_images: {tmp_path / 'img'}
val_ann: {tmp_path / 'val.json'}
val_images: {tmp_path / 'img'}
skeleton: ""
model: lightweight_openpose
loss: l2
input_size: [128, 128]
batch_size: 2
max_epochs: 2
num_workers: 0
early_stop_patience: 0
limit_records: 6
out_dir: {tmp_path / 'runs'}
name: multi
""")
    r = CliRunner().invoke(app, ["train", str(config), "--no-progress"])
    assert r.exit_code == 0, r.output
    bundle = load_model(tmp_path / "runs" / "multi" / "model.pt")
    assert bundle.codec.kind == "paf" and bundle.skeleton.limbs == ((0, 1), (0, 2), (0, 3), (0, 4))
    heatmaps, pafs = bundle.network(__import__("torch").zeros(1, 3, 128, 128))[-1]
    assert heatmaps.shape == (1, 6, 16, 16) and pafs.shape == (1, 8, 16, 16)
    res = predict(tmp_path / "img" / "7.png", model=bundle)[0]
    assert res.keypoints.ndim == 3 and res.keypoints.shape[1:] == (5, 2)  # any number of instances, 5 keypoints
    out = tmp_path / "ap.json"
    r = CliRunner().invoke(app, ["evaluate", "--model", str(tmp_path / "runs" / "multi" / "model.pt"), "--coco",
                                 str(tmp_path / "val.json"), "--images", str(tmp_path / "img"), "--json", str(out)])
    assert r.exit_code == 0, r.output
    m = json.loads(out.read_text())
    assert m["n_images"] == 2 and m["n_instances"] == 8 and 0.0 <= m["AP"] <= 1.0
