"""``handpose evaluate`` crops COCO boxes with the model's own training ``box_margin`` unless told otherwise."""

import json

import pytest
from typer.testing import CliRunner

from handpose.bundle import load_model
from handpose.cli import app
from handpose.evaluate import model_box_margin

runner = CliRunner()


@pytest.fixture()
def margin_model(tmp_path):
    """The bundled network, its card saying it was trained on COCO crops with box_margin 0.1."""
    bundle = load_model("hand21_resunet")
    bundle.card = {**bundle.card, "config": {"dataset": "coco", "box_margin": 0.1, "extra_train": []}}
    bundle.save(tmp_path / "m.pt")
    return tmp_path / "m.pt"


@pytest.fixture()
def few_hands(hands_coco, tmp_path):
    """The first 12 hands of coco-wholebody-hands' val file (a quick set, real photos)."""
    ann, images = hands_coco
    data = json.loads(ann.read_text())
    data["annotations"] = data["annotations"][:12]
    keep = {a["image_id"] for a in data["annotations"]}
    data["images"] = [im for im in data["images"] if im["id"] in keep]
    (tmp_path / "few.json").write_text(json.dumps(data))
    return tmp_path / "few.json", images


def _evaluate(model, ann, images, out, *extra):
    r = runner.invoke(app, ["evaluate", "--model", str(model), "--coco", str(ann), "--images", str(images),
                            "--json", str(out), *extra], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    return json.loads(out.read_text()), r.output


def test_model_box_margin_from_the_card(margin_model):
    assert model_box_margin(load_model(margin_model)) == 0.1
    bundle = load_model("hand21_resunet")
    assert model_box_margin(bundle) is None  # the bundled model records no training config
    bundle.card = {"config": {"dataset": "freihand", "box_margin": 0.25, "extra_train": []}}
    assert model_box_margin(bundle) is None  # FreiHAND photos alone: it never saw a COCO crop
    bundle.card = {"config": {"dataset": "freihand", "box_margin": 0.0, "extra_train": [{"ann": "a", "images": "b"}]}}
    assert model_box_margin(bundle) == 0.0  # its extra COCO hands were cropped at 0


def test_evaluate_crops_with_the_models_margin_by_default(margin_model, few_hands, tmp_path):
    ann, images = few_hands
    default, text = _evaluate(margin_model, ann, images, tmp_path / "d.json")
    assert default["box_margin"] == 0.1 and "margin 0.1 per side (the model's training box_margin)" in text
    given, text = _evaluate(margin_model, ann, images, tmp_path / "g.json", "--margin", "0.1")
    assert given["error_px"] == default["error_px"] and "warning" not in text
    # another margin is obeyed, with a warning, and changes the crops the model sees
    other, text = _evaluate(margin_model, ann, images, tmp_path / "o.json", "--margin", "0.25")
    assert other["box_margin"] == 0.25 and "trained on crops with box_margin 0.1" in " ".join(text.split())
    assert other["error_px"]["mean"] != default["error_px"]["mean"]
    # a model that records no margin: the old default, 0.25, and it says so
    bundled, text = _evaluate("hand21_resunet", ann, images, tmp_path / "b.json")
    assert bundled["box_margin"] == 0.25 and "the model records no training box_margin" in " ".join(text.split())
