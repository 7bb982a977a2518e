"""Several labelled sets in one training (``train_sets`` / ``val_sets``): loss weights, sampling by weight, validation
per set, and the config's checks, on the real hgcnn-freihand, coco-wholebody-hands and teacher-labelled sets."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from handpose import HAND21
from handpose.config import load_config
from handpose.data.coco import teacher_weight
from handpose.data.sets import load_set, sampling_weights
from handpose.errors import HandposeError
from handpose.train import build_datasets, train
from tests.conftest import DATA

TEACHER = DATA / "sign-digits-teacher"


@pytest.fixture(scope="module")
def teacher_set():
    if not TEACHER.is_dir():
        pytest.skip(f"{TEACHER} not present")
    return TEACHER / "annotations" / "val.json", TEACHER / "images"


def _sets(small_freihand, hands_coco, teacher_set, **teacher_opts):
    (ann, images), (t_ann, t_images) = hands_coco, teacher_set
    teacher = {"name": "digits", "ann": str(t_ann), "images": str(t_images), **teacher_opts}
    return [{"name": "fh", "freihand": str(small_freihand), "split": "train", "weight": 1.0},
            {"name": "coco", "ann": str(ann), "images": str(images), "weight": 0.0}, teacher]


def test_teacher_weight_falls_with_disagreement():
    assert teacher_weight({"teacher_disagreement": 0.0}) == 1.0
    assert teacher_weight({"teacher_disagreement": 0.03}) == pytest.approx(0.5)
    assert teacher_weight({"teacher_disagreement": 0.09}) == 0.0
    assert teacher_weight({"id": 1}) == 1.0  # a person's label
    with pytest.raises(HandposeError, match="annotation 7: teacher_disagreement 'x'"):
        teacher_weight({"id": 7, "teacher_disagreement": "x"})


def test_load_set_weights_each_record(teacher_set):
    ann, images = teacher_set
    anns = json.loads(Path(ann).read_text())["annotations"]
    plain = load_set({"name": "d", "ann": str(ann), "images": str(images)}, HAND21)
    weighted = load_set({"name": "d", "ann": str(ann), "images": str(images), "loss_weight": 0.5, "teacher": True},
                        HAND21)
    assert len(plain) == len(weighted) == len(anns)
    assert all(r.weight == 1.0 for r in plain)
    expect = [0.5 * (1 - a["teacher_disagreement"] / 0.06) for a in anns]
    assert [r.weight for r in weighted] == pytest.approx(expect, abs=1e-6)
    assert len({round(r.weight, 4) for r in weighted}) > 10  # really per annotation
    with pytest.raises(HandposeError, match="set 'broken'"):
        load_set({"name": "broken", "ann": str(ann), "images": str(Path(images).parent)}, HAND21)


def test_sampling_weights_give_each_set_its_share():
    p = sampling_weights([2, 6, 0, 4], [1.0, 1.0, 5.0, 2.0])  # the empty set's weight goes to nobody
    assert p.shape == (12,) and p.sum() == pytest.approx(1.0)
    assert p[:2].sum() == pytest.approx(0.25) and p[2:8].sum() == pytest.approx(0.25)
    assert p[8:].sum() == pytest.approx(0.5) and np.allclose(p[8:], 0.125)
    draws = torch.multinomial(torch.from_numpy(p), 40000, replacement=True, generator=torch.Generator().manual_seed(0))
    assert (draws < 2).float().mean().item() == pytest.approx(0.25, abs=0.01)
    with pytest.raises(HandposeError, match="no training set"):
        sampling_weights([3, 0], [0.0, 1.0])


def test_config_checks_set_entries(small_freihand, hands_coco, teacher_set, tmp_path):
    good = _sets(small_freihand, hands_coco, teacher_set)
    val = [{"name": "v", "freihand": str(small_freihand), "split": "val"}]
    with pytest.raises(HandposeError, match="train_sets needs val_sets"):
        load_config(None, [f"train_sets={json.dumps(good)}"])
    with pytest.raises(HandposeError, match="val_sets goes with train_sets"):
        load_config(None, [f"val_sets={json.dumps(val)}"])
    bad = [{**good[0], "ann": "x.json"}]
    with pytest.raises(HandposeError, match=r"train_sets\[0\] \(fh\): give either ann \+ images"):
        load_config(None, [f"train_sets={json.dumps(bad)}", f"val_sets={json.dumps(val)}"])
    with pytest.raises(HandposeError, match=r"val_sets\[0\] \(v\): unknown keys \['weight'\]"):
        load_config(None, [f"train_sets={json.dumps(good)}", f"val_sets={json.dumps([{**val[0], 'weight': 2}])}"])
    with pytest.raises(HandposeError, match="loss_weight must be a number >= 0"):
        load_config(None, [f"train_sets={json.dumps([{**good[0], 'loss_weight': -1}])}",
                           f"val_sets={json.dumps(val)}"])


def test_config_file_resolves_set_paths(tmp_path):
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "mix.yaml"
    path.write_text("train_sets: [{name: a, ann: ../d/a.json, images: ../d/img, weight: 2}]\n"
                    "val_sets: [{name: v, freihand: ../fh, split: val}]\nbackgrounds: ../bg\n")
    cfg = load_config(path)
    assert cfg.train_sets[0]["ann"] == str(tmp_path / "d" / "a.json") and cfg.train_sets[0]["weight"] == 2
    assert cfg.val_sets[0]["freihand"] == str(tmp_path / "fh") and cfg.backgrounds == str(tmp_path / "bg")


def test_mixed_training_samples_by_weight_and_validates_per_set(small_freihand, hands_coco, teacher_set, tmp_path):
    sets = _sets(small_freihand, hands_coco, teacher_set, weight=3.0, loss_weight=0.5, teacher=True)
    val = [{"name": "fh_val", "freihand": str(small_freihand), "split": "val"},
           {"name": "coco", "ann": str(hands_coco[0]), "images": str(hands_coco[1])}]
    cfg = load_config(None, [
        f"train_sets={json.dumps(sets)}", f"val_sets={json.dumps(val)}", "skeleton=hand21", "model=resunet",
        "input_size=64", "batch_size=8", "batches_per_epoch=3", "max_epochs=2", "num_workers=0", "cache=false",
        f"out_dir={tmp_path}", "name=mix", "early_stop_patience=0", "limit_records=30"])
    train_ds, val_ds, meta, sampling = build_datasets(cfg, "heatmap", 2)
    sizes = [16, 30, 30]  # fh train split of the 20-image copy; the others capped by limit_records
    assert len(train_ds) == sum(sizes) and [len(v) for v in val_ds] == [3, 30]
    assert sampling[:16].sum() == pytest.approx(0.25) and sampling[16:46].sum() == 0.0  # coco has weight 0
    assert sampling[46:].sum() == pytest.approx(0.75)
    teacher_item = train_ds[50]
    record = train_ds.records[50]
    assert record.weight < 0.5 and teacher_item["weights"].max().item() == pytest.approx(record.weight)
    assert meta["card"]["train_sets"] == {"fh": 16, "coco": 30, "digits": 30}
    out = train(cfg, progress=False)
    rows = list(csv.DictReader(open(next((tmp_path / "mix" / "logs").rglob("metrics.csv")))))
    val_rows = [r for r in rows if r.get("val_epe_px")]
    assert len(val_rows) == 2
    for r in val_rows:  # the first set is also logged plainly: it picks the checkpoint
        assert float(r["val_epe_px"]) == pytest.approx(float(r["val_epe_px/fh_val"]))
        assert float(r["val_epe_px/coco"]) > 0 and r["val_epe_px/coco"] != r["val_epe_px"]
    steps = sorted({int(r["step"]) for r in rows if r.get("train_loss")})
    assert steps[-1] + 1 == 2 * 3  # 3 batches per epoch, drawn with replacement
    assert out["best_score"] == pytest.approx(min(float(r["val_epe_px/fh_val"]) for r in val_rows))
