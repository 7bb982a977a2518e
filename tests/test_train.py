"""Training: overfitting two real images, the Lightning run with checkpoints and resume, DDP."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from handpose import HAND21, load_model
from handpose.codecs.heatmap import HeatmapCodec
from handpose.config import load_config
from handpose.data import load_freihand
from handpose.data.dataset import KeypointDataset, channel_stats
from handpose.errors import HandposeError
from handpose.losses import iou_loss
from handpose.models import create_model
from handpose.train import resolve_resume, train


def test_overfits_two_real_images(freihand_root):
    torch.manual_seed(0)
    records = load_freihand(freihand_root, "train", limit=2)
    model = create_model("resunet", 21)
    codec = HeatmapCodec((64, 64), stride=model.stride, sigma=1.0)
    ds = KeypointDataset(records, HAND21, codec)
    ds.mean, ds.std = channel_stats(ds.raw(i)[0] for i in range(len(ds)))
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    first = None
    for _ in range(120):
        loss = iou_loss(model(batch["image"]), batch["target"], batch["weights"])
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        xy, _ = codec.decode(model(batch["image"]))
    err = (xy - batch["keypoints"]).norm(dim=-1).mean().item()
    assert loss.item() < 0.5 * first
    # 64 px input: an untrained model is ~20 px off; the overfit model within 2 px (1/32 of the input)
    assert err < 2.0, err


def _cfg(root, tmp_path, *extra):
    return load_config(None, [
        "dataset=freihand", f"data_root={root}", "model=resunet", "input_size=64", "batch_size=4",
        "max_epochs=2", "limit_train_batches=2", "num_workers=0", f"out_dir={tmp_path}", "name=t",
        "early_stop_patience=0", *extra])


def test_lightning_run_checkpoints_and_resume(small_freihand, tmp_path):
    out = train(_cfg(small_freihand, tmp_path), progress=False)
    run = tmp_path / "t"
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "config.yaml").is_file()
    assert Path(out["model"]).is_file() and out["epochs"] == 2
    assert list((run / "logs").rglob("metrics.csv"))
    bundle = load_model(out["model"])
    assert bundle.skeleton == HAND21 and bundle.input_size == (64, 64)
    assert len(bundle.mean) == 3 and all(0.05 < s < 0.6 for s in bundle.std)
    from_ckpt = load_model(out["best_checkpoint"])  # model.pt holds the best checkpoint's weights
    exported = bundle.network.state_dict()
    assert all(torch.equal(v, exported[k]) for k, v in from_ckpt.network.state_dict().items())
    # resume from the last checkpoint and continue to epoch 3; with a time limit, Lightning's Timer keeps the
    # elapsed time in the checkpoint (what _fit_minutes reads after a resume)
    out2 = train(_cfg(small_freihand, tmp_path, "resume=last", "max_epochs=3", "max_minutes=60"), progress=False)
    assert out2["epochs"] == 3
    ck = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert ck["global_step"] == 6  # 2 batches x 3 epochs: the run went on from step 4, not from 0
    timer = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False, map_location="cpu")["callbacks"]["Timer"]
    assert timer["time_elapsed"]["train"] > 0


def test_fit_minutes_count_the_resumed_part():
    import time
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import Timer

    from handpose.train import _fit_minutes

    timer = Timer(duration={"minutes": 60})
    timer.load_state_dict({"time_elapsed": {"train": 600.0}})  # 10 minutes before the stop, not started again
    t0 = time.time() - 120.0
    assert _fit_minutes(SimpleNamespace(callbacks=[timer]), t0) == pytest.approx(10.0)
    assert _fit_minutes(SimpleNamespace(callbacks=[]), t0) == pytest.approx(2.0, abs=0.01)  # no Timer: wall clock


def test_resume_auto_starts_fresh_or_goes_on(tmp_path):
    cfg = _cfg(tmp_path, tmp_path, "resume=auto")
    assert resolve_resume(cfg) is None  # nothing to go on from: a fresh start, no error
    with pytest.raises(HandposeError, match="last.ckpt not found"):
        resolve_resume(_cfg(tmp_path, tmp_path, "resume=last"))
    ckpt = tmp_path / "t" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")  # an empty (killed) checkpoint is read before use and refused (issue 13)
    with pytest.raises(HandposeError, match="no readable checkpoint"):
        resolve_resume(cfg)


def test_val_every_n_epochs(small_freihand, tmp_path):
    import csv

    train(_cfg(small_freihand, tmp_path, "val_every=2", "max_epochs=4"), progress=False)
    rows = list(csv.DictReader(next((tmp_path / "t" / "logs").rglob("metrics.csv")).open()))
    assert sorted({int(r["epoch"]) for r in rows if r.get("val_loss")}) == [1, 3]


def test_last_checkpoint_is_the_last_epoch(small_freihand, tmp_path):
    # with lr 0 the validation loss cannot improve steadily, so "best" stays behind; "last" must not
    train(_cfg(small_freihand, tmp_path, "lr=0.0", "max_epochs=4"), progress=False)
    ck = torch.load(tmp_path / "t" / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert ck["global_step"] == 8


def test_checkpoint_monitor_last_exports_the_last_epoch(small_freihand, tmp_path):
    out = train(_cfg(small_freihand, tmp_path, "checkpoint_monitor=last", "max_epochs=3"), progress=False)
    assert Path(out["best_checkpoint"]).name == "last.ckpt" and out["monitor"] == "last"
    exported = load_model(out["model"]).network.state_dict()
    last = load_model(tmp_path / "t" / "checkpoints" / "last.ckpt").network.state_dict()
    assert all(torch.equal(v, exported[k]) for k, v in last.items())
    with pytest.raises(HandposeError, match="checkpoint_monitor must be"):
        load_config(None, ["checkpoint_monitor=newest"])


def test_config_errors(tmp_path):
    with pytest.raises(HandposeError, match="did you mean"):
        load_config(None, ["learning_rate=0.1"])
    p = tmp_path / "c.yaml"
    p.write_text("batch_sise: 3\n")
    with pytest.raises(HandposeError, match="c.yaml: unknown config key 'batch_sise'"):
        load_config(p)
    with pytest.raises(HandposeError, match="resume"):
        train(_cfg(tmp_path, tmp_path, "resume=nowhere.ckpt"), progress=False)


def test_corrupt_training_image_is_named_before_training(small_freihand, tmp_path):
    (small_freihand / "training" / "rgb" / "00000004.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(HandposeError, match="00000004.jpg"):
        train(_cfg(small_freihand, tmp_path), progress=False)


@pytest.mark.slow
def test_ddp_two_cpu_processes(small_freihand, tmp_path):
    cmd = [sys.executable, "-m", "handpose.cli", "train", "--no-progress",
           "--set", "dataset=freihand", "--set", f"data_root={small_freihand}", "--set", "input_size=64",
           "--set", "batch_size=2", "--set", "max_epochs=1", "--set", "limit_train_batches=2",
           "--set", "num_workers=0", "--set", f"out_dir={tmp_path}", "--set", "name=ddp",
           "--set", "devices=2", "--set", "strategy=ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stderr + p.stdout
    # both ranks joined the gloo process group (Lightning's messages)
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in out and "distributed_backend=gloo" in out
    assert (tmp_path / "ddp" / "model.pt").is_file()
    assert np.isfinite(load_model(tmp_path / "ddp" / "model.pt").std).all()


def test_regression_model_trains_and_predicts(small_freihand, tmp_path):
    out = train(_cfg(small_freihand, tmp_path, "model=resnet18_regression", "loss=l1", "input_size=[96, 64]",
                     "max_epochs=1"), progress=False)
    bundle = load_model(out["model"])
    assert bundle.codec.kind == "regression" and bundle.input_size == (96, 64)
    from handpose import Predictor
    from handpose.data.image import read_image

    res = Predictor(bundle).predict_arrays([read_image(small_freihand / "training" / "rgb" / "00000000.jpg")])[0]
    assert res.keypoints.shape == (1, 21, 2) and np.isfinite(res.keypoints).all()
    assert (res.scores == 1).all()  # regression has no confidence
    with pytest.raises(HandposeError, match="loss 'iou' does not fit a regression model"):
        train(_cfg(small_freihand, tmp_path, "model=resnet18_regression", "loss=iou"), progress=False)


def test_cyclic_one_cycle_repeats():
    from handpose.train import CyclicOneCycleLR

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1e-3)
    sched = CyclicOneCycleLR(opt, max_lr=1e-2, total_steps=10)
    lrs, betas = [], []
    for _ in range(25):
        lrs.append(opt.param_groups[0]["lr"])
        betas.append(opt.param_groups[0]["betas"][0])
        opt.step()
        sched.step()
    assert max(lrs) == pytest.approx(1e-2, rel=1e-3) and lrs[0] < 1e-3
    assert lrs[:10] == pytest.approx(lrs[10:20]) and lrs[3] == pytest.approx(lrs[23])
    assert betas[0] == pytest.approx(0.95) and min(betas) == pytest.approx(0.85, rel=1e-3)  # momentum cycles too


def test_stages_freeze_then_unfreeze(small_freihand, tmp_path):
    base = ["model=resnet18_regression", "loss=l1", "input_size=[64, 64]"]
    m0 = train(_cfg(small_freihand, tmp_path, *base, "name=m0", "max_epochs=1"), progress=False)["model"]
    stages = "stages=[{max_epochs: 1, freeze_backbone: true}, {max_epochs: 2, schedule: onecycle, cycle_epochs: 2}]"
    out = train(_cfg(small_freihand, tmp_path, *base, "name=staged", f"init_weights={m0}", stages), progress=False)
    s1 = load_model(tmp_path / "staged" / "stage1" / "model.pt").network.state_dict()
    s2 = load_model(tmp_path / "staged" / "stage2" / "model.pt").network.state_dict()
    w0 = load_model(m0).network.state_dict()
    conv = "backbone.layer2.0.conv1.weight"
    assert torch.equal(s1[conv], w0[conv])                          # frozen in stage 1
    assert not torch.equal(s1["head.fc.1.weight"], w0["head.fc.1.weight"])  # the head trained
    assert not torch.equal(s2[conv], s1[conv])                      # unfrozen in stage 2
    final = load_model(out["model"]).network.state_dict()
    assert all(torch.equal(final[k], s2[k]) for k in s2) and len(out["stages"]) == 2
    import csv

    rows = list(csv.DictReader(open(next((tmp_path / "staged" / "stage2" / "logs").rglob("metrics.csv")))))
    lrs = [float(r["lr-Adam"]) for r in rows if r.get("lr-Adam")]
    assert len(lrs) == 4 and max(lrs) > 2 * lrs[0]  # one-cycle warm-up within the 4 steps
    # resuming a finished staged run skips its stages
    again = train(_cfg(small_freihand, tmp_path, *base, "name=staged", f"init_weights={m0}", stages, "resume=last"),
                  progress=False)
    assert [s.get("skipped") for s in again["stages"]] == [True, True]
    # the run's model card counts the minutes of both stages, also when they were skipped on resume
    stage_minutes = [load_model(tmp_path / "staged" / f"stage{i}" / "model.pt").card["train_minutes"] for i in (1, 2)]
    assert min(stage_minutes) > 0
    assert load_model(again["model"]).card["train_minutes"] == pytest.approx(sum(stage_minutes), abs=0.01)
    assert again["minutes"] == pytest.approx(sum(stage_minutes), abs=0.01)


def test_extra_train_sets_join_the_train_split_only(small_freihand, hands_coco, tmp_path):
    import json

    from handpose.train import load_records

    ann, images = hands_coco
    hands = [a for a in json.loads(Path(ann).read_text())["annotations"]
             if not a.get("iscrowd") and a.get("num_keypoints", 1) >= 1]
    cfg = _cfg(small_freihand, tmp_path, f"extra_train=[{{ann: {ann}, images: {images}}}]")
    train_recs, skeleton = load_records(cfg, "train")
    assert skeleton == HAND21 and len(train_recs) == 16 + len(hands)
    assert {r.image_path.parent for r in train_recs[16:]} == {Path(images)}
    assert len(load_records(cfg, "val")[0]) == 3  # validation stays on the main set
    body = Path(ann).parents[2] / "coco-person-mini" / "annotations" / "person_keypoints_val2017.json"
    wrong = _cfg(small_freihand, tmp_path, f"extra_train=[{{ann: {body}, images: {body.parents[1] / 'val2017'}}}]")
    with pytest.raises(HandposeError, match="person_keypoints_val2017.json.*21"):
        load_records(wrong, "train")
    with pytest.raises(HandposeError, match=r"extra_train\[0\]: expected"):
        _cfg(small_freihand, tmp_path, f"extra_train=[{{ann: {ann}}}]")
