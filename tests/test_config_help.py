"""``handpose config``: every TrainConfig key with its default, type and one line of help, from one place."""

import dataclasses

import yaml
from typer.testing import CliRunner

from handpose.cli import app
from handpose.config import FIELD_HELP, TrainConfig, config_fields, load_config

runner = CliRunner()


def test_every_field_has_one_help_line_in_the_docstring():
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    helped = [name for section in FIELD_HELP.values() for name in section]
    assert helped == names  # each field once, in field order
    doc = " ".join(TrainConfig.__doc__.split())
    for section, helps in FIELD_HELP.items():
        assert f"{section}:" in TrainConfig.__doc__
        for name, text in helps.items():
            assert "\n" not in text and text.strip()
            assert f"{name}: {text}" in doc  # the docstring is made from the same text


def test_config_fields_defaults_and_types():
    fields = {f["name"]: f for f in config_fields()}
    assert fields["lr"]["default"] == 1e-3 and fields["lr"]["type"] == "float"
    assert fields["split"]["default"] == [0.8, 0.15, 0.05] and fields["aug_brightness"]["type"] == "float | None"
    assert fields["max_epochs"]["section"] == "Optimisation" and "epochs" in fields["max_epochs"]["help"]


def test_cli_config_yaml_is_a_config_of_the_defaults(tmp_path):
    r = runner.invoke(app, ["config", "--yaml"])
    assert r.exit_code == 0, r.output
    path = tmp_path / "defaults.yaml"
    path.write_text(r.output)
    assert yaml.safe_load(r.output) == TrainConfig().to_dict()
    assert load_config(path) == TrainConfig()
    line = next(x for x in r.output.splitlines() if x.startswith("loss:"))
    # the type and the help as a comment, RST literals as plain text
    assert line.startswith("loss: iou  # str: heatmap models iou (the hand tutorial's) or mse;")
    assert "# Augmentation" in r.output


def test_cli_config_table_lists_keys_and_refuses_unknown_ones():
    r = runner.invoke(app, ["config", "lr", "box_margin"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    rows = [x for x in r.output.splitlines() if "│ lr " in x or "│ box_margin " in x]
    assert len(rows) == 2 and "0.001" in rows[1] and "learning rate" in rows[1]
    assert "max_epochs" not in r.output
    r = runner.invoke(app, ["config", "max_epoch"])
    assert r.exit_code == 2 and "did you mean ['max_epochs']" in r.output
