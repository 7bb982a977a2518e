"""Bottom-up data: whole images with all instances, ignore masks and mosaics of single-hand photos."""

import numpy as np
import pytest

from handpose import HAND21
from handpose.codecs.paf import PafCodec
from handpose.data import load_coco, load_freihand
from handpose.data.bottomup import BottomUpDataset, ignore_mask, mosaic
from handpose.errors import HandposeError
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


def test_window_cuts_a_scaled_window_around_an_instance(hands_coco):
    from handpose.data.bottomup import window
    from handpose.data.image import read_image

    ann, images = hands_coco
    records, _ = load_coco(ann, images, per_instance=False)
    r = next(r for r in records if len(r.keypoints) >= 2)
    src = read_image(r.image_path)
    img, kp, mask = window(r, (256, 192), 1.5, np.random.default_rng(0))
    assert img.shape == (192, 256, 3) and kp.shape == r.keypoints.shape and mask.shape == (192, 256)
    # a scale and a shift: every labelled keypoint 1.5 x as far from the first one as in the photo
    lab = r.visible > 0
    d_src = np.linalg.norm(r.keypoints[lab] - r.keypoints[lab][0], axis=1)
    d_win = np.linalg.norm(kp[lab] - kp[lab][0], axis=1)
    np.testing.assert_allclose(d_win, 1.5 * d_src, atol=1e-3)
    # the photo's colours at the moved keypoints inside the window (bilinear resampling only)
    inside = lab & (kp[..., 0] >= 1) & (kp[..., 0] <= 254) & (kp[..., 1] >= 1) & (kp[..., 1] <= 190)
    assert inside.sum() >= 10
    got = img[np.round(kp[inside][:, 1]).astype(int), np.round(kp[inside][:, 0]).astype(int)].astype(float)
    want = src[np.round(r.keypoints[inside][:, 1]).astype(int), np.round(r.keypoints[inside][:, 0]).astype(int)]
    assert float(np.abs(got - want).mean()) < 25.0  # the same places (a wrong shift of a few px gives > 40)
    # centred on one instance, shifted by at most a third of the window
    centres = [(k[v > 0].min(0) + k[v > 0].max(0)) / 2 for k, v in zip(kp, r.visible, strict=True)]
    assert min(np.abs(c - np.array([127.5, 95.5])).max() / np.array([256, 192]).max() for c in centres) <= 1 / 3
    with pytest.raises(HandposeError, match="scale"):
        window(r, (256, 192), 0.0, np.random.default_rng(0))


def test_config_builds_composites_windows_and_the_predict_size(freihand_root, hands_coco, tmp_path):
    from handpose.config import TrainConfig
    from handpose.train import build_datasets

    ann, images = hands_coco
    people = DATA / "coco-person-mini"
    if not people.is_dir():
        pytest.skip("coco-person-mini not present")
    cfg = TrainConfig(dataset="coco", train_ann=str(ann), train_images=str(images), val_ann=str(ann),
                      val_images=str(images), skeleton="hand21", model="lightweight_openpose", loss="l2",
                      input_size=[128, 128], composite_sets=[{"name": "hgcnn", "freihand": str(freihand_root),
                                                              "split": "train"}],
                      composite_backgrounds={"ann": str(people / "annotations" / "person_keypoints_train2017.json"),
                                             "images": str(people / "train2017")},
                      composite_prob=0.5, composite_hands=[2, 2], crop_scale=[1.0, 1.0], predict_size=[320, 256],
                      predict_upsample=4, normalize="openpose", limit_records=3, aug_flip=0.0)
    train_ds, _, meta, _ = build_datasets(cfg, "paf", 8)
    # the model file letterboxes whole photos into predict_size and enlarges the maps 4 x before grouping
    assert meta["input_size"] == [320, 256] and meta["codec"]["upsample"] == 4 and meta["codec"]["stride"] == 8
    assert len(train_ds.composites.hands) == 3 and len(train_ds.composites.backgrounds) == 9
    np.random.seed(0)
    counts = [len(train_ds.sample(0)[1]) for _ in range(12)]
    first = len(load_coco(ann, images, per_instance=False)[0][0].keypoints)
    assert set(counts) == {2, first} or set(counts) <= {2}, counts  # composites of 2 hands, or the photo's hands
    assert 2 in counts and first in counts
    item = train_ds[0]
    assert item["image"].shape == (3, 128, 128) and item["heatmaps"].shape == (22, 16, 16)
    with pytest.raises(HandposeError, match="composite_backgrounds"):
        TrainConfig(composite_sets=[{"name": "h", "freihand": str(freihand_root), "split": "train"}])
    with pytest.raises(HandposeError, match="crop_scale"):
        TrainConfig(crop_scale=[2.0, 1.0])


def test_bundle_at_input_size_predicts_whole_photos_at_another_size():
    from handpose import Predictor, load_model
    from handpose.models.openpose import lightweight_openpose_bundle

    body = lightweight_openpose_bundle()
    big = body.at_input_size((640, 480), upsample=2)
    assert big.input_size == (640, 480) and big.codec.upsample == 2 and big.network is body.network
    assert body.input_size == (784, 368) and body.codec.upsample == 4  # the original is unchanged
    photo = np.zeros((300, 400, 3), np.uint8)
    assert Predictor(big).prepare(photo).tensor.shape == (3, 480, 640)
    with pytest.raises(HandposeError, match="bottom-up"):
        load_model("hand21_resunet").at_input_size((256, 256))
    with pytest.raises(HandposeError, match="upsample"):
        body.at_input_size((256, 256), upsample=0)
