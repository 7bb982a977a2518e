"""train under faults (issue 13): SIGKILL during a checkpoint save, SIGTERM, unreadable checkpoints and stage models,
read-only run folders, hostile checkpoints (weights_only=True whatever the environment), bad overrides, init_weights
of another size."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from handpose.atomic import atomic_write
from handpose.bundle import load_model
from handpose.config import load_config
from handpose.errors import HandposeError
from handpose.train import PREVIOUS_LAST, AtomicCheckpointIO, read_checkpoint, resolve_resume, train
from tests.conftest import REPO

TINY = ["dataset=freihand", "model=resunet", "input_size=64", "batch_size=4", "limit_train_batches=2",
        "num_workers=0", "name=t", "early_stop_patience=0", "limit_records=12"]


def _cfg(root, out, *extra):
    return load_config(None, [*TINY, f"data_root={root}", f"out_dir={out}", *extra])


def _sets(root, out, *extra) -> list[str]:
    return [a for kv in [*TINY, f"data_root={root}", f"out_dir={out}", *extra] for a in ("--set", kv)]


class _Payload:
    """A pickle that touches a marker file when unpickled without weights_only."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_hostile_and_truncated_checkpoints_are_refused_whatever_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": {}, "epoch": 0, "x": _Payload(marker)}, hostile)
    for load in (read_checkpoint, AtomicCheckpointIO().load_checkpoint):
        with pytest.raises(HandposeError, match="hostile.ckpt cannot be read"):
            load(hostile)
    with pytest.raises(HandposeError, match="hostile.ckpt cannot be read"):
        resolve_resume(_cfg(tmp_path, tmp_path, f"resume={hostile}"))
    assert not marker.exists()  # the payload never ran
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.ones(3)}, "epoch": 4, "loops": {}}, good)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    r = CliRunner().invoke(_app(), ["train", *_sets(tmp_path, tmp_path, f"resume={cut}")])
    assert r.exit_code == 2 and "cut.ckpt cannot be read" in r.output, r.output


def _app():
    from handpose.cli import app

    return app


def test_unreadable_last_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    folder = tmp_path / "t" / "checkpoints"
    folder.mkdir(parents=True)
    io = AtomicCheckpointIO()
    for epoch in (1, 2):
        io.save_checkpoint({"state_dict": {}, "epoch": epoch}, folder / "last.ckpt")
    assert torch.load(folder / PREVIOUS_LAST, weights_only=True)["epoch"] == 1
    (folder / "last.ckpt").write_bytes(b"")  # what a kill during a non-atomic save left
    assert resolve_resume(_cfg(tmp_path, tmp_path, "resume=last")) == str(folder / PREVIOUS_LAST)
    assert "skipped checkpoint" in capsys.readouterr().err and (folder / "last.ckpt.unreadable").is_file()


def test_read_only_run_folder_fails_before_training(small_freihand, tmp_path):
    # /sys refuses new files even to root (a chmod'ed folder would not stop root)
    ro = Path("/sys/handpose-test") if os.geteuid() == 0 else tmp_path / "ro"
    if os.geteuid() != 0:
        ro.mkdir()
        ro.chmod(0o555)
    t0 = time.time()
    r = CliRunner().invoke(_app(), ["train", *_sets(small_freihand, ro), "--no-progress"])
    assert r.exit_code == 2 and "is not writable" in r.output, r.output
    assert time.time() - t0 < 10  # up front: no epoch was run
    with pytest.raises(HandposeError, match="could not be written"):  # a save that fails mid-run stops the run
        AtomicCheckpointIO().save_checkpoint({"epoch": 0}, ro / "checkpoints" / "last.ckpt")


def test_atomic_write_leaves_the_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")

    def full_disk(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(path, full_disk)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_bad_override_and_init_weights_of_another_size_are_named_errors(tmp_path):
    with pytest.raises(HandposeError, match="lr=\\[1, 2.*not valid YAML"):
        load_config(None, ["lr=[1, 2"])
    from handpose.bundle import ModelBundle, bundled_models
    from handpose.skeleton import HAND12
    from handpose.train import KeypointModule

    assert "hand21_resunet" in bundled_models()
    bundle = load_model("hand21_resunet")  # a 21-keypoint heatmap model
    meta = {k: v for k, v in bundle.to_dict().items() if k != "state_dict"}
    cfg = load_config(None, [f"model={bundle.arch}"])
    twelve = KeypointModule({**meta, "skeleton": HAND12.to_dict()}, cfg.to_dict())  # the same network, 12 keypoints
    other = tmp_path / "hand12.pt"
    ModelBundle(twelve.network, HAND12, twelve.codec, bundle.mean, bundle.std, bundle.arch, {}, {},
                bundle.pad_mode).save(other)
    cfg = load_config(None, [f"model={bundle.arch}", f"init_weights={other}"])
    with pytest.raises(HandposeError, match="init_weights .*hand12.pt: tensors of another size .* 21 keypoints"):
        KeypointModule(meta, cfg.to_dict())


KILL_DURING_SAVE = textwrap.dedent("""
    import os, signal, sys, torch
    from handpose.config import load_config
    from handpose.train import train
    saves = 0
    real = torch.save
    def save(obj, f, *a, **k):  # the 2nd write of last.ckpt (epoch 2) dies half-way through, as under SIGKILL
        global saves
        saves += ".last.ckpt." in str(getattr(f, "name", ""))
        if saves == 2:
            f.write(b"PK\\x03\\x04 half a checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real(obj, f, *a, **k)
    torch.save = save
    train(load_config(None, sys.argv[1:]), progress=False)
""")


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_save_loses_at_most_that_epoch(small_freihand, tmp_path):
    args = [*TINY, f"data_root={small_freihand}", f"out_dir={tmp_path}", "max_epochs=2"]
    env = {**os.environ, "TMPDIR": "/dev/shm", "OMP_NUM_THREADS": "1"}  # a temp folder on another filesystem
    p = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, *args], cwd=REPO, env=env, capture_output=True)
    assert p.returncode == -signal.SIGKILL, p.stderr.decode()[-2000:]
    folder = tmp_path / "t" / "checkpoints"
    assert read_checkpoint(folder / "last.ckpt")["epoch"] == 0  # epoch 1's whole checkpoint, not the half one
    assert list(folder.glob(".*.tmp"))  # the half-written file is a hidden temporary
    out = train(_cfg(small_freihand, tmp_path, "max_epochs=2", "resume=auto"), progress=False)
    assert out["epochs"] == 2 and not list(folder.glob(".*.tmp"))
    assert read_checkpoint(folder / "last.ckpt")["global_step"] == 4  # 2 steps x 2 epochs: epoch 1 not redone


@pytest.mark.slow
def test_sigterm_saves_and_exits_143(small_freihand, tmp_path):
    cmd = [sys.executable, "-m", "handpose.cli", "train", *_sets(small_freihand, tmp_path, "max_epochs=200"),
           "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    last = tmp_path / "t" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not last.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 143, output[-3000:]
    assert "stopped by SIGTERM" in output and not (tmp_path / "t" / "model.pt").exists()
    assert read_checkpoint(last)["global_step"] >= 2  # saved on the way out (resuming is tested above)


def test_truncated_stage_model_is_trained_again(tmp_path, monkeypatch, capsys):
    train_module = importlib.import_module("handpose.train")  # handpose.train is the function
    from handpose.bundle import bundled_models

    bundle = load_model(bundled_models()[0])
    trained = []

    def fake_train_single(cfg, progress=True):  # the stage's training, stood in for: it writes a real model.pt
        trained.append(cfg.name)
        bundle.save(cfg.run_dir / "model.pt")
        return {"model": str(cfg.run_dir / "model.pt")}

    monkeypatch.setattr(train_module, "train_single", fake_train_single)
    stages = "stages=[{max_epochs: 1}, {max_epochs: 1}]"
    train(_cfg(tmp_path, tmp_path, stages), progress=False)
    assert trained == ["t/stage1", "t/stage2"]
    stage1 = tmp_path / "t" / "stage1" / "model.pt"
    stage1.write_bytes(stage1.read_bytes()[:1000])  # a model.pt cut short: before, it counted as a finished stage
    out = train(_cfg(tmp_path, tmp_path, stages, "resume=last"), progress=False)
    assert "training that stage again" in capsys.readouterr().err
    assert trained[2:] == ["t/stage1"] and out["stages"][1].get("skipped")
    load_model(stage1)
    load_model(out["model"])


def test_a_failed_checkpoint_save_stops_the_run_loudly(tmp_path, monkeypatch):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    train_module = importlib.import_module("handpose.train")  # handpose.train is the function

    class Tiny(L.LightningModule):  # the smallest fit: what matters is what happens to the save's error
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, _):
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    def full_disk(path, write, keep_previous=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(train_module, "atomic_write", full_disk)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=4)
    last = ModelCheckpoint(dirpath=tmp_path, filename="last", monitor=None, enable_version_counter=False)
    trainer = L.Trainer(max_epochs=3, callbacks=[last], plugins=[AtomicCheckpointIO()], logger=False,
                        enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(HandposeError, match="last.ckpt could not be written \\(No space left on device\\)"):
        trainer.fit(Tiny(), data)  # Lightning's own save swallowed PermissionError and trained on
    assert trainer.current_epoch == 0  # stopped at the first failed save, not after the run
