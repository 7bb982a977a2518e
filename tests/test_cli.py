"""The ``handpose`` command on real images with the bundled model."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from handpose.cli import app
from handpose.predict import expand_inputs
from tests.conftest import REPO

runner = CliRunner()
EXAMPLES = REPO / "examples" / "hands"


def test_predict_json_and_overlay(tmp_path):
    out = tmp_path / "pred.json"
    r = runner.invoke(app, ["predict", str(EXAMPLES), "--json", str(out), "--overlay", str(tmp_path / "ov")])
    assert r.exit_code == 0, r.output
    entries = json.loads(out.read_text())
    assert len(entries) == 4
    for e in entries:
        kp = np.asarray(e["keypoints"]).reshape(21, 3)
        assert kp[:, :2].min() >= -50 and kp[:, :2].max() <= 300  # in original-image pixels of 256x256 photos
        assert 0 <= e["score"] <= 1 and (kp[:, 2] >= 0).all()
    assert sorted(p.name for p in (tmp_path / "ov").iterdir()) == [
        "hgcnn_460.png", "hgcnn_466.png", "hgcnn_472.png", "hgcnn_478.png"]
    assert "wrist=(" in r.output


def test_predict_reports_bad_file_and_goes_on(tmp_path):
    shutil.copy(EXAMPLES / "hgcnn_460.jpg", tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8\xff truncated")
    (tmp_path / "c.png").write_text("not a png")
    shutil.copy(EXAMPLES / "hgcnn_466.jpg", tmp_path / "d.jpg")
    out = tmp_path / "pred.json"
    r = runner.invoke(app, ["predict", str(tmp_path), str(tmp_path / "missing.jpg"), "--json", str(out), "-q"])
    assert r.exit_code == 1
    assert "b.jpg" in r.output and "c.png" in r.output and "missing.jpg" in r.output
    assert [e["file_name"].split("/")[-1] for e in json.loads(out.read_text())] == ["a.jpg", "d.jpg"]


def test_predict_unknown_model():
    r = runner.invoke(app, ["predict", str(EXAMPLES), "--model", "no_such_model"])
    assert r.exit_code == 2 and "bundled" in r.output


def test_evaluate_freihand_val(freihand_root, tmp_path):
    out = tmp_path / "m.json"
    r = runner.invoke(app, ["evaluate", "--freihand", str(freihand_root), "--split", "val", "--json", str(out),
                            "--report", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    m = json.loads(out.read_text())
    assert m["n_images"] == 73 and m["n_keypoints"] == 73 * 21
    # 256 px images at the default's 160 px input: errors in image pixels are 1.6 times those at the input; % is
    # of 256 px
    assert m["error_px"]["mean"] == pytest.approx(256 / 160 * m["error_input_px"]["mean"], rel=1e-3)
    assert m["error_pct_of_image"]["mean"] == pytest.approx(100 * m["error_px"]["mean"] / 256, rel=1e-3)
    assert m["pck@0.05"] <= m["pck@0.1"] <= m["pck@0.2"]
    assert set(m["per_group_px"]) == {"wrist", "thumb", "index", "middle", "ring", "little"}
    for name in ("metrics.json", "pck_curve.png", "per_keypoint_error.png", "worst_images.png", "gallery.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 100


def test_evaluate_coco_crops(hands_coco, tmp_path):
    ann, images = hands_coco
    out = tmp_path / "m.json"
    r = runner.invoke(app, ["evaluate", "--coco", str(ann), "--images", str(images), "--json", str(out)])
    assert r.exit_code == 0, r.output
    m = json.loads(out.read_text())
    assert m["n_images"] == 65 and m["n_keypoints"] == sum(
        a["num_keypoints"] for a in json.loads(ann.read_text())["annotations"])


def test_expand_inputs_glob_and_problems(tmp_path):
    paths, problems = expand_inputs([str(EXAMPLES / "*_46*.jpg"), str(tmp_path), "nope.jpg"])
    assert [p.name for p in paths] == ["hgcnn_460.jpg", "hgcnn_466.jpg"]
    assert len(problems) == 2 and "no image files" in problems[0][1]


def test_draw_labels_of_coco_crops(hands_coco, tmp_path):
    ann, images = hands_coco
    r = runner.invoke(app, ["draw", str(tmp_path), "--coco", str(ann), "--images", str(images), "--limit", "2"])
    assert r.exit_code == 0, r.output
    files = sorted(tmp_path.glob("*.png"))
    assert len(files) == 2
    from handpose.data.image import read_image

    img = read_image(files[0])
    assert img.shape == (256, 256, 3)
    # the thumb's colour is drawn somewhere in the crop
    assert (np.abs(img.astype(int) - (230, 25, 75)).sum(axis=2) < 10).sum() > 20
