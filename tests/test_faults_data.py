"""The readers under hostile labels (issue 13): duplicate ids, paths out of the images folder, impossible
visibility and coordinates, FreiHAND points off the image, malformed JSON shapes and ONNX metadata, each a named
HandposeError instead of wrong data or a traceback."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from handpose.config import load_config
from handpose.data.coco import load_coco, read_coco_json
from handpose.data.freihand import load_freihand
from handpose.errors import HandposeError


@pytest.fixture()
def coco(hands_coco):
    ann, images = hands_coco
    return json.loads(ann.read_text()), images


def _write(tmp_path, data, name="ann.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_duplicate_image_ids_are_an_error_naming_both(coco, tmp_path):
    data, images = coco
    d = copy.deepcopy(data)
    used = {a["image_id"] for a in d["annotations"]}
    spare = next(im for im in d["images"] if im["id"] in used)
    # a second entry with the same id: before, it silently replaced the first (the labels on another photo)
    d["images"].append({**spare, "file_name": "000000000000.jpg"})
    with pytest.raises(HandposeError, match=f"same id {spare['id']} \\({spare['file_name']} and 000000000000.jpg"):
        load_coco(_write(tmp_path, d), images)
    r = CliRunner().invoke(_app(), ["draw", str(tmp_path / "out"), "--coco", str(tmp_path / "ann.json"),
                                    "--images", str(images)])
    assert r.exit_code == 2 and "same id" in r.output
    d = copy.deepcopy(data)
    d["annotations"][3]["id"] = d["annotations"][1]["id"]
    with pytest.raises(HandposeError, match="annotations\\[1\\] and annotations\\[3\\] have the same id"):
        load_coco(_write(tmp_path, d), images)


def _app():
    from handpose.cli import app

    return app


def test_file_names_outside_the_images_folder_need_an_explicit_option(coco, tmp_path):
    data, images = coco
    first = data["annotations"][0]["image_id"]
    for name in (f"../images/{_name(data, first)}", str(images.resolve() / _name(data, first))):
        d = copy.deepcopy(data)
        next(im for im in d["images"] if im["id"] == first)["file_name"] = name
        path = _write(tmp_path, d)
        with pytest.raises(HandposeError, match="lies outside the images folder"):
            load_coco(path, images)
        records, _ = load_coco(path, images, allow_outside=True)
        assert len(records) == len(data["annotations"])
    draw = ["draw", str(tmp_path / "drawn"), "--coco", str(path), "--images", str(images), "--limit", "1"]
    r = CliRunner().invoke(_app(), draw)
    assert r.exit_code == 2 and "lies outside the images folder" in r.output
    r = CliRunner().invoke(_app(), [*draw, "--allow-outside-images"])
    assert r.exit_code == 0, r.output
    assert load_config(None, ["allow_outside_images=true"]).allow_outside_images


def _name(data, image_id):
    return next(im["file_name"] for im in data["images"] if im["id"] == image_id)


def test_impossible_visibility_and_coordinates_are_refused(coco, tmp_path):
    data, images = coco
    d = copy.deepcopy(data)
    d["annotations"][0]["keypoints"][2] = 7
    with pytest.raises(HandposeError, match="keypoint 0 has visibility 7"):
        load_coco(_write(tmp_path, d), images)
    d = copy.deepcopy(data)
    for im in d["images"]:  # no size in the json: the image file's header gives it
        im.pop("width"), im.pop("height")
    assert len(load_coco(_write(tmp_path, d), images)[0]) == len(data["annotations"])
    d["annotations"][0]["keypoints"][0] = -500
    with pytest.raises(HandposeError, match="keypoint 0 at \\(-500.0, .*lies outside its 480x640 image"):
        load_coco(_write(tmp_path, d), images)


def _with_first_annotation(d: dict, **fields) -> dict:
    return {**d, "annotations": [{**d["annotations"][0], **fields}, *d["annotations"][1:]]}


@pytest.mark.parametrize("change, message", [
    (lambda d: [], "expected a JSON object .* got a list"),
    (lambda d: 3, "got a int"),
    (lambda d: {**d, "images": [{k: v for k, v in d["images"][0].items() if k != "file_name"}, *d["images"][1:]]},
     "images\\[0\\] needs an 'id' and a 'file_name'"),
    (lambda d: _with_first_annotation(d, keypoints=["abc", *d["annotations"][0]["keypoints"][1:]]),
     "keypoint value 0 \\(keypoint 0\\) is 'abc'"),
    (lambda d: {**d, "annotations": [7, *d["annotations"]]}, "annotations\\[0\\] is not an object"),
    (lambda d: _with_first_annotation(d, bbox=[1, "x", 2, 3]), "expected a non-empty bbox"),
])
def test_malformed_coco_json_is_a_named_error(coco, tmp_path, change, message):
    data, images = coco
    path = _write(tmp_path, change(copy.deepcopy(data)))
    with pytest.raises(HandposeError, match=message):
        load_coco(path, images)


def test_freihand_ragged_entries_and_points_off_the_image_are_refused(small_freihand):
    xyz_path, k_path = small_freihand / "training_xyz.json", small_freihand / "training_K.json"
    xyz, K = json.loads(xyz_path.read_text()), json.loads(k_path.read_text())
    assert len(load_freihand(small_freihand, "all")) == 20
    bad = copy.deepcopy(xyz)
    bad[2][5] = bad[2][5][:2]  # a ragged row
    xyz_path.write_text(json.dumps(bad))
    with pytest.raises(HandposeError, match="training_xyz.json\\[2\\]: expected 21 rows of numbers"):
        load_freihand(small_freihand, "all")
    xyz_path.write_text(json.dumps(xyz))
    bad_k = copy.deepcopy(K)
    bad_k[4] = (np.asarray(K[4]) * [[3, 1, 1], [1, 1, 1], [1, 1, 1]]).tolist()  # focal length x3: off the image
    k_path.write_text(json.dumps(bad_k))
    with pytest.raises(HandposeError, match="training_xyz.json\\[4\\]: keypoint \\d+ projects to .* outside its "
                                            "256x256 image 00000004.jpg"):
        load_freihand(small_freihand, "all")
    k_path.write_text(json.dumps({"K": K}))
    with pytest.raises(HandposeError, match="expected a JSON list"):
        load_freihand(small_freihand, "all")


def test_onnx_metadata_that_is_not_json_is_a_named_error(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from handpose.export import METADATA_KEY, load_onnx

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    for raw, message in (("{not json", "not valid JSON"), ("[1, 2]", "not a JSON object"),
                         ('{"skeleton": 1}', "lacks or garbles a field")):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        helper.set_model_props(model, {METADATA_KEY: raw})
        path = tmp_path / "m.onnx"
        onnx.save(model, path)
        with pytest.raises(HandposeError, match=f"m.onnx: .*{message}"):
            load_onnx(path)


def test_read_coco_json_keeps_good_files_unchanged(hands_coco):
    ann, _ = hands_coco
    assert read_coco_json(ann) == json.loads(ann.read_text())
