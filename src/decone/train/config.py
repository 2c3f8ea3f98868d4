"""The one source of training settings: :class:`TrainConfig`, its defaults, validation and parsing.

Every ``decone train`` flag, ``--set NAME=VALUE`` and ``--grid NAME=V1,V2`` parses through the dataclass's type hints
(:func:`parse_value`); a method's own settings through its options dataclass. :meth:`TrainConfig.resolved` merges
the method's paper defaults in once and checks every value.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from decone.encoder import POOLINGS
from decone.errors import ConfigError
from decone.lora import SAVE_MODES as LORA_SAVE_MODES
from decone.lora import check_settings as check_lora_settings
from decone.methods import HEADS, get_method, option_types

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass
class TrainConfig:
    """Everything a run needs; each field is a ``decone train`` flag. ``None`` takes the method's paper default.

    ``options`` holds the method's own settings (``--set NAME=VALUE`` for a name that is not a field here); the
    resolved, typed instance is :attr:`method_options`.
    """

    method: str = "simcse"
    model: str = ""
    data: str | None = None
    output: str = "out"
    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    temperature: float | None = None
    pooling: str | None = None
    template: str | None = None  # mask pooling's prompt, e.g. 'This sentence : "[X]" means [MASK] .'
    head: str | None = None
    max_length: int | None = None
    hard_negative_weight: float | None = None
    mask_span: int | None = None
    scl_lambda: float | None = None
    seed: int = 42
    bf16: bool | None = None
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    group_by_length: bool = True
    eval_data: str | None = None
    eval_every: int = 125
    save_every: int = 250
    log_every: int = 10
    diagnose_every: int = 0
    mini_batch_size: int = 0
    max_memory: str | None = None  # e.g. "4GB": GradCache mini-batches chosen to fit; None: 70% of what is free at start
    fast_dropout: bool | None = None  # None: on, or on --resume as the interrupted run had it
    adaptive_threads: bool = True  # CPU: fewer threads while other processes keep cores busy (decone.threads)
    encoding: str = "utf-8"
    text_column: str | None = None
    resume: bool = False
    overwrite: bool = False
    keep_checkpoint: bool = False  # keep checkpoint/ (optimizer state) in the finished model folder
    attention: str | None = None  # decoders: "bidirectional" switches causal attention off (decone.decoders)
    lora_r: int | None = None  # LoRA rank (decone.lora, needs peft); None or 0: train every weight
    lora_alpha: float | None = None  # LoRA scale; None: 2 x lora_r
    lora_targets: str | None = None  # comma-separated module names; None: the model family's default
    lora_dropout: float = 0.05
    lora_save: str = "merged"  # "merged": adapters folded into the weights; "adapter": the adapter alone + its base's path
    allow_pickle: bool = False
    trust_remote_code: bool = False
    options: dict = field(default_factory=dict)

    @property
    def method_options(self) -> Any:
        """The method's own settings as its options dataclass (None for methods without any)."""
        kind = get_method(self.method).options
        return None if kind is None else kind(**self.options)

    def stage_configs(self) -> list["TrainConfig"]:
        """A staged method's stages as configs: stage i reads stage i-1's output; the last writes ``output``, the
        others ``OUTPUT.stages/<i>-<method>``. General settings given here apply to every stage (``None`` keeps each
        stage's own default; ``--lora-save adapter`` only to the last: an earlier stage is the next one's base, so
        it is saved merged); each ``--set`` option goes to the stages that have it."""
        method = get_method(self.method)
        final = Path(self.output)
        configs, model = [], self.model
        for i, name in enumerate(method.stages, 1):
            last = i == len(method.stages)
            out = final if last else stages_folder(final) / f"{i}-{name}"
            own = option_types(name)
            configs.append(replace(self, method=name, model=model, output=str(out),
                                   options={k: v for k, v in self.options.items() if k in own},
                                   lora_save=self.lora_save if last else "merged"))  # the next stage's base
            model = str(out)
        return configs

    def resolved(self) -> "TrainConfig":
        """A copy with the method's defaults filled in and every value checked (for a staged method: every
        stage's settings are checked, and the copy is returned as given)."""
        method = get_method(self.method)
        if method.stages:
            unknown = sorted(set(self.options) - set(option_types(self.method)))
            if unknown:
                raise ConfigError(f"--set {unknown[0]}: not a setting of any stage of {self.method}")
            for stage in self.stage_configs():
                stage.resolved()
            cfg = replace(self)
            cfg.validate()
            return cfg
        values = asdict(self)
        for key, value in method.defaults.items():
            if values.get(key) is None:
                values[key] = value
        options = dict(self.options)
        if method.options is not None:  # a general setting the method also has as its own: the method's copy takes it
            for name in set(typing.get_type_hints(method.options)) & set(values) - {"options"}:
                if values[name] is not None and name not in options:
                    options[name] = values[name]
                    values[name] = None if f_default(name) is None else f_default(name)
        values["options"] = resolve_options(method, options)
        cfg = TrainConfig(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if not self.model:
            raise ConfigError("no --model given")
        for f in fields(self):  # every float finite, whatever its range
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"--{_flag(f.name)} must be a finite number, got {value}")
        _check(self.temperature is None or self.temperature > 0, "temperature", "> 0", self.temperature)
        _check(self.batch_size is None or self.batch_size >= 2, "batch_size",
               ">= 2 (in-batch negatives need a second example)", self.batch_size)
        _check(self.lr is None or self.lr > 0, "lr", "> 0", self.lr)
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise ConfigError(f"--pooling {self.pooling!r} unknown; choose one of {', '.join(POOLINGS)}")
        if (self.pooling == "mask") != (self.template is not None) and self.pooling is not None:
            raise ConfigError("--template goes with --pooling mask, and --pooling mask needs a --template")
        if self.head is not None and self.head not in HEADS:
            raise ConfigError(f"--head {self.head!r} unknown; choose one of {', '.join(HEADS)}")
        _check(self.max_steps is None or self.max_steps >= 1, "max_steps", ">= 1", self.max_steps)
        _check(self.epochs is None or self.epochs >= 1, "epochs", ">= 1", self.epochs)
        _check(self.max_length is None or self.max_length >= 2, "max_length", ">= 2", self.max_length)
        _check(0 <= self.warmup_ratio < 1, "warmup_ratio", "in [0, 1)", self.warmup_ratio)
        _check(self.weight_decay >= 0, "weight_decay", ">= 0", self.weight_decay)
        _check(self.max_grad_norm >= 0, "max_grad_norm", ">= 0 (0 disables clipping)", self.max_grad_norm)
        _check(self.scl_lambda is None or 0 <= self.scl_lambda <= 1, "lambda", "in [0, 1]", self.scl_lambda)
        _check(self.mask_span is None or self.mask_span >= 0, "mask_span", ">= 0", self.mask_span)
        if self.attention not in (None, "causal", "bidirectional"):
            raise ConfigError(f"--attention must be causal or bidirectional, got {self.attention!r}")
        check_lora_settings(self.lora_r, self.lora_alpha, self.lora_dropout, flag=lambda name: f"--{_flag(name)}")
        if self.lora_save not in LORA_SAVE_MODES:
            raise ConfigError(f"--lora-save {self.lora_save!r} unknown; choose one of {', '.join(LORA_SAVE_MODES)}")
        _check(self.mini_batch_size >= 0, "mini_batch_size", ">= 0", self.mini_batch_size)
        if self.max_memory is not None:
            from decone.memory import parse_size

            parse_size(self.max_memory)
        _check(self.diagnose_every >= 0, "diagnose_every", ">= 0", self.diagnose_every)
        for name in ("eval_every", "save_every", "log_every"):
            _check(getattr(self, name) >= 1, name, ">= 1", getattr(self, name))


def f_default(name: str):
    """A TrainConfig field's default value."""
    f = TrainConfig.__dataclass_fields__[name]
    return None if f.default is MISSING else f.default


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _check(ok: bool, name: str, rule: str, value) -> None:
    if not ok:
        raise ConfigError(f"--{_flag(name)} must be {rule}, got {value}")


# ------------------------------------------------------------------------------------------------------- parsing
def parse_value(kind: Any, raw: str, where: str) -> Any:
    """``raw`` as the type hint ``kind`` says (bool, int, float, str, or an Optional of one; ``none`` for None)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if raw.strip().lower() in ("none", "null") and type(None) in args:
            return None
        kind = next(a for a in args if a is not type(None))
    text = raw.strip()
    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"{where}: must be a boolean (true/false), got {raw!r}")
    if kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            raise ConfigError(f"{where}: must be {kind.__name__}, got {raw!r}") from None
        if kind is float and not math.isfinite(value):
            raise ConfigError(f"{where}: must be a finite number, got {raw!r}")
        return value
    if kind is str:
        return raw
    raise ConfigError(f"{where}: this setting cannot be given as text")


def stages_folder(output: str | Path) -> Path:
    """Where a staged method keeps its intermediate stages: ``OUTPUT.stages`` beside ``OUTPUT``."""
    output = Path(output)
    return output.with_name(output.name + ".stages")


def setting_types(method: str | None = None) -> dict[str, Any]:
    """Name -> type hint of every TrainConfig field, and of the method's options when ``method`` is given."""
    hints = {k: v for k, v in typing.get_type_hints(TrainConfig).items() if k != "options"}
    if method is not None:
        hints.update(option_types(method))
    return hints


def parse_settings(pairs: list[str], method: str, flag: str = "--set") -> dict:
    """``["bf16=false", "momentum=0.99"]`` -> ``{"bf16": False, "options": {"momentum": 0.99}}``."""
    hints = setting_types(method)
    option_names = set(option_types(method))  # a method's own names first
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in hints or key == "method":
            raise ConfigError(f"{flag} {pair!r}: expected NAME=VALUE with NAME a setting of {method} "
                              f"({', '.join(sorted(hints))})")
        parsed = parse_value(hints[key], value, f"{flag} {key}")
        if key in option_names:
            out.setdefault("options", {})[key] = parsed
        else:
            out[key] = parsed
    return out


def resolve_options(method, given: dict) -> dict:
    """The method's options with its defaults, values checked against the dataclass (types, finite floats)."""
    if method.options is None:
        if given:
            raise ConfigError(f"--set {', '.join(given)}: method {method.name} has no such setting")
        return {}
    assert is_dataclass(method.options)
    hints = typing.get_type_hints(method.options)
    unknown = sorted(set(given) - set(hints))
    if unknown:
        raise ConfigError(f"--set {unknown[0]}: not a setting of {method.name} ({', '.join(sorted(hints))})")
    values = asdict(method.options())
    for key, value in given.items():
        values[key] = parse_value(hints[key], value, f"--set {key}") if isinstance(value, str) and hints[key] is not str \
            else value
        if isinstance(values[key], float) and not math.isfinite(values[key]):
            raise ConfigError(f"--set {key} must be a finite number, got {values[key]}")
    instance = method.options(**values)
    check = getattr(instance, "validate", None)
    if check is not None:
        check()  # the options dataclass's own range checks (ConfigError)
    return values

