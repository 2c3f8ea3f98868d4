"""One source for every setting: where a CLI option states a default of its own, it is the config dataclass's
default (TrainConfig for `decone train`, FewShotConfig for `decone fewshot`), so the two cannot drift apart."""

from __future__ import annotations

import dataclasses
import inspect

from decone.classify.fewshot import FewShotConfig
from decone.train import TrainConfig


def _defaults(cls) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _option_defaults(command) -> dict:
    """{parameter: the default typer shows} for every option of ``command`` that has one (not None, not required)."""
    out = {}
    for name, param in inspect.signature(command).parameters.items():
        default = getattr(param.default, "default", param.default)
        if default is not None and default is not ... and not isinstance(default, list):
            out[name] = default
    return out


def _parse(value: str, kind):
    return [kind(x) for x in value.split(",")]


def test_train_options_default_to_the_config_dataclass():
    from decone.cli import train

    config, options = _defaults(TrainConfig), _option_defaults(train)
    shared = {name: value for name, value in options.items() if name in config}
    assert len(shared) >= 12, shared  # seed, schedule, evaluation, logging, GradCache, threads, encoding, LoRA ...
    assert {name: config[name] for name in shared} == shared


def test_fewshot_options_default_to_the_config_dataclass():
    from decone.classify.command import fewshot_command

    config, options = _defaults(FewShotConfig), _option_defaults(fewshot_command)
    lists = {"shots": int, "noise": float, "lambdas": float}  # comma-separated on the command line
    shown = {name: _parse(value, lists[name]) if name in lists else value
             for name, value in options.items() if name in config}
    assert set(lists) <= set(shown) and len(shown) >= 12, shown
    assert {name: config[name] for name in shown} == shown
