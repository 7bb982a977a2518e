"""A user's own keypoint set from a labelling tool's COCO export trains from a config alone."""

import json
import shutil

import numpy as np
from typer.testing import CliRunner

from handpose import load_model
from handpose.cli import app
from handpose.data import load_freihand

runner = CliRunner()


def test_config_only_custom_set(freihand_root, tmp_path):
    # a CVAT-style export: 5 keypoints (wrist and 4 finger tips), 4 limbs with 0-based pairs, flip pairs none
    records = load_freihand(freihand_root, "all")
    images = tmp_path / "images"
    images.mkdir()
    pick = [0, 11, 22, 33, 44, 55, 66, 77, 400, 410]
    coco_images, anns = [], []
    for n, i in enumerate(pick):
        shutil.copy(records[i].image_path, images / f"img{n}.jpg")
        kp = records[i].keypoints[0][[0, 8, 12, 16, 20]]
        x0, y0 = kp.min(0)
        x1, y1 = kp.max(0)
        coco_images.append({"id": n, "file_name": f"img{n}.jpg", "width": 256, "height": 256})
        anns.append({"id": 100 + n, "image_id": n, "category_id": 7, "iscrowd": 0, "num_keypoints": 5,
                     "keypoints": np.concatenate([kp, np.full((5, 1), 2)], 1).reshape(-1).round(2).tolist(),
                     "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]})
    cat = {"id": 7, "name": "fingertips", "keypoints": ["wrist", "index", "middle", "ring", "little"],
           "skeleton": [[0, 1], [0, 2], [0, 3], [0, 4]]}
    for name, sl in (("train", slice(0, 8)), ("val", slice(8, 10))):
        ids = {im["id"] for im in coco_images[sl]}
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"images": coco_images[sl], "annotations": [a for a in anns if a["image_id"] in ids], "categories": [cat]}))
    config = tmp_path / "tips.yaml"
    config.write_text(f"""
dataset: coco
train_ann: {tmp_path / 'train.json'}
train_images: {images}
val_ann: {tmp_path / 'val.json'}
val_images: {images}
skeleton: ""
model: resunet
input_size: [64, 64]
batch_size: 4
max_epochs: 2
num_workers: 0
early_stop_patience: 0
out_dir: {tmp_path / 'runs'}
name: tips
""")
    r = runner.invoke(app, ["train", str(config), "--no-progress"])
    assert r.exit_code == 0, r.output
    bundle = load_model(tmp_path / "runs" / "tips" / "model.pt")
    assert bundle.skeleton.keypoints == ("wrist", "index", "middle", "ring", "little")
    assert bundle.skeleton.limbs == ((0, 1), (0, 2), (0, 3), (0, 4))
    assert bundle.network(__import__("torch").zeros(1, 3, 64, 64)).shape[1] == 5
    out = tmp_path / "m.json"
    r = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "runs" / "tips" / "model.pt"), "--coco",
                            str(tmp_path / "val.json"), "--images", str(images), "--json", str(out)])
    assert r.exit_code == 0, r.output
    m = json.loads(out.read_text())
    assert m["n_images"] == 2 and m["n_keypoints"] == 10 and set(m["per_keypoint_px"]) == set(cat["keypoints"])
