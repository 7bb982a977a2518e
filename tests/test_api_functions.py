"""handpose.train / evaluate / export from Python, the CLI calling them, COCO results for pycocotools, and the
training display and results.png."""

import csv
import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import handpose
from handpose.cli import app
from handpose.data.freihand import load_freihand
from handpose.data.image import read_image
from handpose.errors import HandposeError
from tests.conftest import REPO

EXAMPLES = REPO / "examples" / "hands"
runner = CliRunner()


def test_the_functions_are_public_and_stay_functions():
    assert {"train", "evaluate", "export"} <= set(handpose.__all__)
    from handpose.evaluate import evaluate as _  # noqa: F401 -- importing the submodules of the same names
    from handpose.export import export_onnx as _e  # noqa: F401
    from handpose.train import train_single as _t  # noqa: F401

    for name in ("train", "evaluate", "export", "predict"):
        assert callable(getattr(handpose, name)) and getattr(handpose, name).__doc__


# ---- evaluate


def test_evaluate_matches_predict_on_freihand_val_and_the_cli(freihand_root, tmp_path):
    records = load_freihand(freihand_root, "val")[:8]
    metrics = handpose.evaluate(None, freihand_root, split="val", limit=8, json_path=tmp_path / "m.json")
    assert metrics["n_images"] == 8 and metrics["n_keypoints"] == 8 * 21
    # the same figure from handpose.predict on the photos (FreiHAND crops are whole images) and the labels
    pred = np.stack([r.keypoints[0] for r in handpose.predict([r.image_path for r in records])])
    gt = np.stack([r.keypoints[0] for r in records])
    assert metrics["error_px"]["mean"] == pytest.approx(float(np.linalg.norm(pred - gt, axis=-1).mean()), abs=1e-3)
    assert 2.0 < metrics["error_px"]["mean"] < 40.0  # the bundled model: 12.8 px over the whole val split
    assert json.loads((tmp_path / "m.json").read_text())["error_px"] == metrics["error_px"]
    r = runner.invoke(app, ["evaluate", "--freihand", str(freihand_root), "--limit", "8", "--json",
                            str(tmp_path / "cli.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "cli.json").read_text()) == json.loads((tmp_path / "m.json").read_text())


def test_evaluate_coco_crops_say_their_margin(hands_coco, tmp_path):
    ann, images = hands_coco
    metrics = handpose.evaluate("hand21_resunet", ann, images=images, limit=4)
    assert metrics["n_images"] == 4
    assert metrics["box_margin"] == 0.25 and metrics["box_margin_source"] == "default"
    given = handpose.evaluate("hand21_resunet", ann, images=images, limit=4, margin=0.1)
    assert given["box_margin_source"] == "argument" and given["error_px"]["mean"] != metrics["error_px"]["mean"]
    with pytest.raises(HandposeError, match="image folder"):
        handpose.evaluate(None, ann)
    with pytest.raises(HandposeError, match="give the data"):
        handpose.evaluate(None, None)


# ---- export


def test_export_runs_in_onnxruntime_like_pytorch(tmp_path):
    import onnxruntime as ort

    out = handpose.export(None, tmp_path / "hand.onnx")
    assert out["path"] == str(tmp_path / "hand.onnx") and out["max_abs_diff"] < 1e-3 and out["int8"] is None
    photo = read_image(EXAMPLES / "hgcnn_460.jpg")
    torch_pred = handpose.Predictor()
    x = torch_pred.prepare(photo).tensor[None]
    session = ort.InferenceSession(out["path"], providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert [o.name for o in session.get_outputs()] == ["output", "presence", "handedness"]  # the default's three
    import torch

    with torch.inference_mode():
        ref = torch_pred.bundle.network(x).numpy()
        presence = torch_pred.bundle.network.landmarks(x).presence.numpy()
    assert outputs[0].shape == ref.shape and np.abs(outputs[0] - ref).max() < 1e-3
    assert np.abs(outputs[1] - presence).max() < 1e-4
    onnx_kp = handpose.predict(photo, model=out["path"])[0].keypoints
    np.testing.assert_allclose(onnx_kp, torch_pred.predict_arrays([photo])[0].keypoints, atol=0.05)
    with pytest.raises(HandposeError, match="only onnx"):
        handpose.export(None, tmp_path / "x.tflite", format="tflite")
    with pytest.raises(HandposeError, match="calibration"):
        handpose.export(None, tmp_path / "y.onnx", int8=tmp_path / "y8.onnx")


# ---- train


def test_train_config_overrides_like_set(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("dataset: freihand\ndata_root: data\nmax_epochs: 30\n"
                        "stages:\n  - {max_epochs: 5}\n  - {lr: 0.01}\n")
    from handpose.api import train_config

    cfg = train_config(cfg_file, max_epochs=2)
    assert cfg.max_epochs == 2 and cfg.stages == [{"max_epochs": 2}, {"lr": 0.01}]
    assert cfg.data_root == str(tmp_path / "data")  # relative to the config file
    assert train_config({"max_epochs": 3}).max_epochs == 3
    with pytest.raises(HandposeError, match="max_epoch.*did you mean"):
        handpose.train(cfg_file, max_epoch=2)


def test_train_one_epoch_writes_the_model_and_results_png(freihand_root, tmp_path):
    from PIL import Image

    from handpose.plots import read_training_log

    run = handpose.train(None, dataset="freihand", data_root=str(freihand_root), limit_records=8, model="resunet",
                         input_size=64, batch_size=4, max_epochs=2, num_workers=0, early_stop_patience=0,
                         out_dir=str(tmp_path), name="api", progress=False)
    assert run["epochs"] == 2 and handpose.load_model(run["model"]).input_size == (64, 64)
    # results.png from the run's CSV log: the curves are the logged numbers
    log = next((tmp_path / "api" / "logs").glob("version_*/metrics.csv"))
    rows = list(csv.DictReader(log.open()))
    logged_epe = [float(r["val_epe_px"]) for r in rows if r.get("val_epe_px")]
    curves = read_training_log(tmp_path / "api")
    assert list(curves["val_epe_px"][0]) == [1.0, 2.0]  # epochs counted from 1
    assert np.allclose(curves["val_epe_px"][1], logged_epe) and min(logged_epe) == pytest.approx(run["best_score"])
    assert len(curves["train_loss"][1]) == 2 and np.allclose(curves["lr"][1], 1e-3)
    png = tmp_path / "api" / "results.png"
    assert run["results_png"] == str(png)
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert img.shape == (400, 1500, 3)
    blue = (np.abs(img - (31, 119, 180)).sum(axis=-1) < 40)  # matplotlib's first line colour
    thirds = [blue[:, i * 500:(i + 1) * 500].sum() for i in range(3)]
    assert min(thirds) > 50, thirds  # a curve in each of the three panels
    # a resumed run logs into a second CSV: the curves join both
    more = handpose.train(None, dataset="freihand", data_root=str(freihand_root), limit_records=8, model="resunet",
                          input_size=64, batch_size=4, max_epochs=3, num_workers=0, early_stop_patience=0,
                          out_dir=str(tmp_path), name="api", resume="last", progress=False)
    assert more["epochs"] == 3 and len(list((tmp_path / "api" / "logs").glob("version_*/metrics.csv"))) == 2
    joined = read_training_log(tmp_path / "api")
    assert list(joined["val_epe_px"][0]) == [1.0, 2.0, 3.0] and np.allclose(joined["val_epe_px"][1][:2], logged_epe)
    assert list(joined["lr"][0]) == [0.0, 1.0, 2.0]  # logged at the start of each epoch


# ---- COCO results


@pytest.fixture()
def three_photos(hands_coco, tmp_path):
    _, images = hands_coco
    folder = tmp_path / "photos"
    folder.mkdir()
    names = ["000000117425.jpg", "000000199055.jpg", "000000241668.jpg"]
    for n in names:
        shutil.copy(images / n, folder / n)
    return folder, names


def test_predict_coco_images_gives_results_pycocotools_reads(hands_coco, three_photos, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from handpose.coco_eval import coco_keypoint_ap

    ann, _ = hands_coco
    folder, names = three_photos
    out = tmp_path / "results.json"
    r = runner.invoke(app, ["predict", str(folder), "--detect", "--json", str(out), "--coco-images", str(ann), "-q"])
    assert r.exit_code == 0, r.output
    entries = json.loads(out.read_text())
    data = json.loads(ann.read_text())
    id_of = {im["file_name"]: im["id"] for im in data["images"]}
    assert len(entries) >= 5
    for e in entries:
        assert e["image_id"] == id_of[e["file_name"].split("/")[-1]] and e["category_id"] == 1
    gt = COCO(str(ann))
    dt = gt.loadRes(str(out))  # raised KeyError 'image_id' before
    ev = COCOeval(gt, dt, "keypoints")
    ev.params.kpt_oks_sigmas = np.asarray(handpose.HAND21.sigmas, float)
    ev.params.imgIds = sorted({e["image_id"] for e in entries})
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    n_gt = len(gt.getAnnIds(imgIds=ev.params.imgIds, iscrowd=None))
    print(f"--detect on {len(names)} coco-wholebody-hands photos: {len(entries)} hands of {n_gt} labelled; "
          f"AP {ev.stats[0]:.3f}, AP50 {ev.stats[1]:.3f}, AR {ev.stats[5]:.3f}")
    assert ev.stats[1] > 0.1  # AP at OKS 0.5: measured 0.25 (COCO-WholeBody's hand sigmas are strict)
    sub = {**data, "images": [im for im in data["images"] if im["id"] in ev.params.imgIds],
           "annotations": [a for a in data["annotations"] if a["image_id"] in ev.params.imgIds]}
    assert coco_keypoint_ap(sub, entries, handpose.HAND21)["AP"] == pytest.approx(ev.stats[0], abs=1e-9)
    # the labels themselves, written as results by Result.to_coco: AP 1
    labels = []
    for a in sub["annotations"]:
        kp = np.asarray(a["keypoints"], float).reshape(21, 3)
        xy = np.where(kp[:, 2:] > 0, kp[:, :2], np.nan).astype(np.float32)[None]
        res = handpose.Result("", xy, np.ones((1, 21), np.float32),
                              np.asarray([a["bbox"]], np.float32), (640, 480), handpose.HAND21)
        labels += res.to_coco(a["image_id"], 1)
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    ev = COCOeval(gt, gt.loadRes(str(tmp_path / "labels.json")), "keypoints")
    ev.params.kpt_oks_sigmas = np.asarray(handpose.HAND21.sigmas, float)
    ev.params.imgIds = sorted({e["image_id"] for e in entries})
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_coco_images_refuses_files_it_does_not_list(hands_coco, three_photos, tmp_path):
    ann, _ = hands_coco
    folder, _ = three_photos
    shutil.copy(EXAMPLES / "hgcnn_460.jpg", folder / "hgcnn_460.jpg")
    r = runner.invoke(app, ["predict", str(folder), "--json", str(tmp_path / "r.json"), "--coco-images", str(ann)],
                      env={"COLUMNS": "300"})
    assert r.exit_code == 2 and "hgcnn_460.jpg" in r.output and "match no image file_name" in r.output


def test_coco_image_ids_match_the_end_of_the_path(tmp_path):
    from handpose.result import CocoImages

    ann = tmp_path / "a.json"
    ann.write_text(json.dumps({"images": [{"id": 7, "file_name": "x.jpg"}, {"id": 8, "file_name": "b/x.jpg"}],
                               "annotations": [], "categories": [{"id": 3, "name": "hand", "keypoints": ["a"]}]}))
    index = CocoImages.read(ann)
    assert index.category_id == 3 and index.keypoints == ["a"]
    assert index.image_id("/data/b/x.jpg") == 8 and index.image_id("/data/a/x.jpg") == 7
    assert index.image_id("y.jpg") is None


# ---- progress


def test_training_display_counts_epochs_from_one_and_names_units():
    from types import SimpleNamespace

    from handpose.progress import TrainProgressBar, format_duration

    bar = TrainProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=10)
    assert bar._get_train_description(0).strip() == "Epoch 1/10"
    assert format_duration(3725.4) == "1:02:05" and format_duration(float("nan")) == "-:--:--"
