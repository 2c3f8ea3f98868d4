"""TrainConfig: one source of settings; --set/--grid parse through the type hints; every float finite."""

from __future__ import annotations

import math

import pytest

from decone.errors import ConfigError
from decone.train import TrainConfig, parse_settings, parse_value


@pytest.mark.parametrize("raw,value", [("false", False), ("False", False), ("0", False), ("no", False),
                                       ("true", True), ("1", True), ("on", True)])
def test_set_parses_booleans(raw, value):
    assert parse_settings([f"bf16={raw}"], "simcse") == {"bf16": value}


def test_set_parses_ints_floats_optionals_and_method_options():
    got = parse_settings(["max_steps=3", "lr=1e-4", "eval_data=none", "momentum=0.9", "group-by-length=off"], "esimcse")
    assert got == {"max_steps": 3, "lr": 1e-4, "eval_data": None, "group_by_length": False, "options": {"momentum": 0.9}}
    assert isinstance(got["max_steps"], int) and isinstance(got["lr"], float)


@pytest.mark.parametrize("pair,match", [
    ("bf16=maybe", "bf16: must be a boolean"),
    ("max_steps=2.5", "max_steps: must be int"),
    ("lr=abc", "lr: must be float"),
    ("temperature=inf", "temperature: must be a finite number"),
    ("temperature=nan", "temperature: must be a finite number"),
    ("nonsense=1", "NAME a setting of simcse"),
    ("no-equals-sign", "expected NAME=VALUE"),
])
def test_set_rejects_bad_values_in_one_line(pair, match):
    with pytest.raises(ConfigError, match=match) as err:
        parse_settings([pair], "simcse")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("field", ["temperature", "lr", "warmup_ratio", "max_grad_norm", "weight_decay"])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_every_float_must_be_finite(field, value):
    with pytest.raises(ConfigError, match=f"--{field.replace('_', '-')} must be a finite number"):
        TrainConfig(method="simcse", model="m", **{field: value}).resolved()


def test_method_defaults_are_merged_once_and_flags_win():
    cfg = TrainConfig(method="mirror", model="m", temperature=0.1).resolved()
    assert cfg.temperature == 0.1 and cfg.batch_size == 200 and cfg.mask_span == 5
    assert cfg.resolved() == cfg  # resolving again changes nothing


def test_parse_value_follows_optional_hints():
    assert parse_value(int | None, "none", "x") is None
    assert parse_value(float, "3", "x") == 3.0
    assert parse_value(str, "none", "x") == "none"


def test_cli_set_bf16_false_trains(tiny_model_dir, tmp_path):
    """The report's failure 7: `--set bf16=false` crashed with a TypeError."""
    from typer.testing import CliRunner

    from decone.cli import app

    data = tmp_path / "s.txt"
    data.write_text("\n".join(f"sentence number {i} about the cat" for i in range(12)) + "\n")
    result = CliRunner().invoke(app, ["train", "simcse", "--model", str(tiny_model_dir), "--data", str(data),
                                      "--output", str(tmp_path / "out"), "--max-steps", "1", "--batch-size", "4",
                                      "--set", "bf16=false"])
    assert result.exit_code == 0, result.output
    import json

    assert json.loads((tmp_path / "out" / "decone.json").read_text())["config"]["bf16"] is False
