"""Paths in a config file are relative to the file's folder; ``--set`` values and ``out_dir`` to the current one."""

import os
from pathlib import Path

import pytest
import yaml

from handpose.config import FILE_PATHS, load_config
from handpose.train import train
from tests.conftest import DATA, REPO


def _write(path: Path, values: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def test_file_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "cfg" / "weights.pt").parent.mkdir(parents=True)
    (tmp_path / "cfg" / "weights.pt").write_bytes(b"")
    (tmp_path / "cfg" / "init").write_bytes(b"")  # an existing file without suffix or folder is a path too
    cfg_file = _write(tmp_path / "cfg" / "c.yaml", {
        "dataset": "coco", "data_root": "fh", "train_ann": "../ann/train.json", "train_images": "../img",
        "val_ann": "~/val.json", "val_images": "/abs/img", "mosaic_root": "", "cache_dir": "cache",
        "extra_train": [{"ann": "x.json", "images": "../x"}], "pretrained": "weights.pt", "init_weights": "init",
        "model_kwargs": {"pretrained": "resnet18.pth"}, "out_dir": "runs", "resume": "runs/r/last.ckpt",
        "stages": [{"init_weights": "m/model.pt", "max_epochs": 1}, {"pretrained": "mediapipe_hand_full"}]})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    c = load_config(cfg_file)  # the answer does not depend on the current folder...
    base = tmp_path / "cfg"
    assert c.data_root == str(base / "fh") and c.cache_dir == str(base / "cache")
    assert c.train_ann == str(tmp_path / "ann" / "train.json") and c.train_images == str(tmp_path / "img")
    assert c.val_ann == os.path.expanduser("~/val.json") and c.val_images == "/abs/img" and c.mosaic_root == ""
    assert c.extra_train == [{"ann": str(base / "x.json"), "images": str(tmp_path / "x")}]
    assert c.pretrained == str(base / "weights.pt") and c.init_weights == str(base / "init")
    assert c.model_kwargs == {"pretrained": str(base / "resnet18.pth")}
    assert c.stages == [{"init_weights": str(base / "m" / "model.pt"), "max_epochs": 1},
                        {"pretrained": "mediapipe_hand_full"}]  # a shipped name stays a name
    # ...except where runs are written: out_dir and resume stay relative to the current folder
    assert c.out_dir == "runs" and c.resume == "runs/r/last.ckpt"
    # --set values are relative to the current folder, as typed
    c = load_config(cfg_file, ["data_root=here/fh", "init_weights=hand21_resunet", "extra_train=[{ann: a, images: b}]"])
    assert c.data_root == "here/fh" and c.init_weights == "hand21_resunet"
    assert c.extra_train == [{"ann": "a", "images": "b"}]


def test_repository_configs_find_their_data_from_any_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    configs = sorted((REPO / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        c = load_config(path)
        paths = [getattr(c, k) for k in FILE_PATHS] + [v for e in c.extra_train for v in e.values()]
        for p in filter(None, paths):
            # the examples' data (written by examples/*/ under REPO/out) or the team's data beside the checkout
            assert Path(p).is_relative_to(REPO / "out") or Path(p).is_relative_to(DATA), (path.name, p)
            if Path(p).is_relative_to(DATA) and DATA.is_dir():
                assert Path(p).exists(), (path.name, p)


def test_training_from_a_config_in_another_folder(small_freihand, tmp_path, monkeypatch):
    # tmp_path/fh is the data; the config sits in tmp_path/cfg and names it ../fh; the run starts in tmp_path/work
    cfg_file = _write(tmp_path / "cfg" / "tiny.yaml", {
        "dataset": "freihand", "data_root": "../fh", "model": "resunet", "input_size": 64, "batch_size": 4,
        "max_epochs": 1, "limit_train_batches": 1, "num_workers": 0, "early_stop_patience": 0, "cache": False,
        "out_dir": "out", "name": "tiny"})
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    cfg = load_config(cfg_file)
    out = train(cfg, progress=False)
    run = tmp_path / "work" / "out" / "tiny"  # out_dir: relative to the current folder
    assert Path(out["model"]).resolve() == (run / "model.pt").resolve() and (run / "model.pt").is_file()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data_root"] == str(small_freihand)  # absolute: the saved config loads from anywhere
    monkeypatch.chdir(tmp_path)
    assert load_config(run / "config.yaml").data_root == str(small_freihand)


@pytest.mark.parametrize("value", ["", "/abs/data"])
def test_empty_and_absolute_paths_are_kept(tmp_path, value):
    c = load_config(_write(tmp_path / "c.yaml", {"data_root": value}))
    assert c.data_root == value
