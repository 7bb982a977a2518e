import json

import numpy as np
import pytest

from handpose import HAND21, HandposeError
from handpose.data import load_coco, load_freihand, project_points
from handpose.data.freihand import split_ids
from handpose.data.image import read_image


def test_project_points_hand_computed():
    K = np.array([[100.0, 0, 50], [0, 200.0, 60], [0, 0, 1]])
    xyz = np.array([[0.1, 0.2, 0.5], [0.0, 0.0, 2.0]])
    # x = 100 * 0.1 / 0.5 + 50 = 70, y = 200 * 0.2 / 0.5 + 60 = 140; the second is the principal point
    np.testing.assert_allclose(project_points(xyz, K), [[70.0, 140.0], [50.0, 60.0]])
    with pytest.raises(HandposeError, match="z <= 0"):
        project_points(np.array([[0, 0, -1.0]]), K)


def test_split_ids():
    s = split_ids(483)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (386, 73, 24)
    assert s["train"].stop == s["val"].start and s["val"].stop == s["test"].start
    with pytest.raises(HandposeError):
        split_ids(10, (0.5, 0.2, 0.2))


def test_freihand_real_split(freihand_root):
    train = load_freihand(freihand_root, "train")
    val = load_freihand(freihand_root, "val")
    assert len(train) == 386 and len(val) == 73
    r = val[0]
    assert r.image_path.name == "00000386.jpg"
    xyz = json.loads((freihand_root / "training_xyz.json").read_text())[386]
    K = np.array(json.loads((freihand_root / "training_K.json").read_text())[386])
    uv = (K @ np.array(xyz).T).T
    np.testing.assert_allclose(r.keypoints[0], uv[:, :2] / uv[:, 2:], atol=1e-3)
    # the data README: all 2D points lie in x 26.1..230.4, y 27.2..251.3 px of the 256x256 images
    kp = np.concatenate([t.keypoints for t in train + val])
    assert 26.0 < kp[..., 0].min() and kp[..., 0].max() < 230.5
    assert 27.1 < kp[..., 1].min() and kp[..., 1].max() < 251.4
    assert read_image(r.image_path).shape == (256, 256, 3)


def test_freihand_bad_inputs(small_freihand, tmp_path):
    with pytest.raises(HandposeError, match="training_xyz.json"):
        load_freihand(tmp_path / "nowhere")
    xyz_path = small_freihand / "training_xyz.json"
    xyz = json.loads(xyz_path.read_text())
    bad = [list(x) for x in xyz]
    bad[3] = bad[3][:20]
    xyz_path.write_text(json.dumps(bad))
    with pytest.raises(HandposeError, match=r"training_xyz.json\[3\].*expected 21 keypoints"):
        load_freihand(small_freihand, "train")
    bad = [list(x) for x in xyz]
    bad[2] = [[float("nan"), 0.0, 0.4]] + bad[2][1:]
    xyz_path.write_text(json.dumps(bad))
    with pytest.raises(HandposeError, match=r"\[2\].*non-finite"):
        load_freihand(small_freihand, "train")
    xyz_path.write_text(json.dumps(xyz[:-1]))
    with pytest.raises(HandposeError, match="19 entries but training_K.json 20"):
        load_freihand(small_freihand)
    xyz_path.write_text(json.dumps(xyz))
    (small_freihand / "training" / "rgb" / "00000005.jpg").unlink()
    with pytest.raises(HandposeError, match="00000005.jpg.*not found"):
        load_freihand(small_freihand, "train")


def test_read_image_errors_and_modes(tmp_path):
    from PIL import Image

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(HandposeError, match="bad.jpg: not a readable image"):
        read_image(bad)
    Image.fromarray(np.full((5, 7), 128, np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.zeros((5, 7, 4), np.uint8)).save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "grey.png").shape == (5, 7, 3)
    assert read_image(tmp_path / "rgba.png").shape == (5, 7, 3)


def test_coco_hands_real(hands_coco):
    ann, images = hands_coco
    records, skeleton = load_coco(ann, images)
    assert skeleton.num_keypoints == 21 and len(skeleton.limbs) >= 20
    assert skeleton.sigmas == HAND21.sigmas
    assert len(records) == 65
    r = records[0]
    data = json.loads(ann.read_text())
    a = data["annotations"][0]
    x, y, w, h = a["bbox"]
    side = max(w, h) * 1.5
    assert r.box.tolist() == pytest.approx([x + w / 2 - side / 2, y + h / 2 - side / 2, side, side], abs=1e-3)
    assert r.keypoints[0, :, 0].tolist() == pytest.approx(a["keypoints"][0::3])
    assert int((r.visible > 0).sum()) == a["num_keypoints"]


def _write_coco(tmp_path, hands_coco, mutate):
    ann, images = hands_coco
    data = json.loads(ann.read_text())
    mutate(data)
    p = tmp_path / "ann.json"
    p.write_text(json.dumps(data))
    return p, images


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d["annotations"][1].update(keypoints=d["annotations"][1]["keypoints"][:60]),
     r"annotation \S+ \(index 1\): expected 63 keypoint values"),
    (lambda d: d["annotations"][2].update(bbox=[1, 2, 0, 5]), r"\(index 2\): expected a non-empty bbox"),
    (lambda d: d["images"][0].update(file_name="missing.jpg"), "missing.jpg not found"),
    (lambda d: d["annotations"].clear(), "empty"),
])
def test_coco_bad_inputs(tmp_path, hands_coco, mutate, match):
    p, images = _write_coco(tmp_path, hands_coco, mutate)
    with pytest.raises(HandposeError, match=match):
        load_coco(p, images)


def test_coco_per_image_with_ignore_regions_and_crowd_only_images(tmp_path):
    from tests.conftest import DATA

    ann = DATA / "coco-person-mini" / "annotations" / "person_keypoints_train2017.json"
    if not ann.is_file():
        pytest.skip("coco-person-mini not present")
    data = json.loads(ann.read_text())
    records, skeleton = load_coco(ann, ann.parent.parent / "train2017", per_instance=False)
    assert skeleton.name == "coco17" and len(records) == 28
    assert sum(r.keypoints.shape[0] for r in records) == 86  # the data README's count of labelled people
    assert sum(len(r.ignore_boxes) for r in records) == 61   # people without keypoints and crowds
    # an image whose only annotation is a crowd: a record with no instances and one ignore box
    img = data["images"][0]
    crowd = {"id": 1, "image_id": img["id"], "category_id": 1, "iscrowd": 1, "num_keypoints": 0,
             "keypoints": [0] * 51, "bbox": [1, 2, 30, 40], "area": 1200}
    p = tmp_path / "crowd.json"
    p.write_text(json.dumps({"images": [img], "annotations": [crowd], "categories": data["categories"]}))
    (r,), _ = load_coco(p, ann.parent.parent / "train2017", per_instance=False)
    assert r.keypoints.shape == (0, 17, 2) and r.ignore_boxes.tolist() == [[1, 2, 30, 40]]


def test_coco_keypoint_outside_image_is_named(tmp_path, hands_coco):
    ann, images = hands_coco
    data = json.loads(ann.read_text())
    a = data["annotations"][4]
    im = next(i for i in data["images"] if i["id"] == a["image_id"])
    a["keypoints"][0] = im["width"] + 50.0
    a["keypoints"][2] = 2
    p = tmp_path / "ann.json"
    p.write_text(json.dumps(data))
    with pytest.raises(HandposeError, match=r"\(index 4\): keypoint 0 at .* lies outside its \d+x\d+ image"):
        load_coco(p, images)
