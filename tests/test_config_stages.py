"""A plain ``--set key=value`` applies to every stage of a staged config, a stage's own value included."""

import yaml

from handpose.config import load_config
from handpose.train import train

STAGES = [{"max_epochs": 20, "lr": 1e-4, "freeze_backbone": True}, {"max_epochs": 10}]


def test_plain_override_replaces_the_key_in_every_stage(tmp_path):
    path = tmp_path / "staged.yaml"
    path.write_text(yaml.safe_dump({"max_epochs": 100, "lr": 1e-3, "stages": STAGES}))
    c = load_config(path, ["max_epochs=5", "lr=0.01"])
    assert c.max_epochs == 5 and c.lr == 0.01
    # stage 1's own lr and both stages' max_epochs give way; stage 2 takes lr from the top level, as before
    assert c.stages == [{"max_epochs": 5, "lr": 0.01, "freeze_backbone": True}, {"max_epochs": 5}]
    assert load_config(path).stages == STAGES  # no override, the file's stages as written
    # stages given on the command line are taken as written, whatever else is overridden with them
    c = load_config(path, ["stages=[{max_epochs: 2}, {max_epochs: 3}]", "max_epochs=5"])
    assert c.stages == [{"max_epochs": 2}, {"max_epochs": 3}]


def test_staged_training_runs_every_stage_for_the_overridden_epochs(small_freihand, tmp_path):
    path = tmp_path / "staged.yaml"
    path.write_text(yaml.safe_dump({
        "dataset": "freihand", "data_root": str(small_freihand), "model": "resunet", "input_size": 64,
        "batch_size": 4, "limit_train_batches": 1, "num_workers": 0, "early_stop_patience": 0, "cache": False,
        "out_dir": str(tmp_path / "runs"), "name": "staged",
        "stages": [{"max_epochs": 3}, {"max_epochs": 4, "aug_rotate": 90}]}))
    out = train(load_config(path, ["max_epochs=1"]), progress=False)
    assert [s["epochs"] for s in out["stages"]] == [1, 1]
    saved = yaml.safe_load((tmp_path / "runs" / "staged" / "config.yaml").read_text())
    assert saved["stages"] == [{"max_epochs": 1}, {"max_epochs": 1, "aug_rotate": 90}]  # the run says what ran
