"""The method registry. A method is one file in this package that calls :func:`register` once.

A :class:`Method` composes what a paper prescribes: the kind of data it reads, the views it makes of a batch, the
objective it optimises, its hyper-parameters and, where it has settings of its own, a small dataclass of them
(``decone train METHOD --set name=value`` sets them, parsed through their type hints). Every module in this package
is imported when the package is, so a new file is all a new method needs (plus its test and its README row).
"""

from __future__ import annotations

import importlib
import pkgutil
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Callable

from decone.augment import ViewFn
from decone.errors import ConfigError
from decone.objectives import Objective

HEADS = ("none", "mlp-train", "mlp")  # no head; SimCSE MLP in training only; MLP kept in the saved model
BACKBONES = ("encoder", "decoder")  # what a method trains: a bidirectional encoder (BERT-like) or a causal LM


@dataclass(frozen=True)
class Method:
    """A method as a composition of parts.

    Attributes:
        name: registry key, the CLI's METHOD argument.
        summary: one line for ``decone train --help`` and the README.
        citation: the paper, with its arXiv id (or other stable id).
        data: ``sentences``, ``words``, ``triples`` or ``labelled`` (see :func:`decone.data.read_dataset`).
        views: ``views(config, tokenizer) -> ViewFn`` turning a batch of examples into K views of B texts.
        objective: ``objective(config) -> Objective``.
        defaults: the paper's values of :class:`~decone.train.TrainConfig` fields.
        options: a dataclass of the method's own settings (paper defaults as field defaults), or None; the resolved
            instance is ``config.method_options``.
        sampler: optional ``sampler(dataset, batch_size, seed, epoch) -> list[index array]`` replacing the default
            length-grouped random batches (e.g. to guarantee positives per class for SupCon).
        stages: for a method that is a sequence of other methods (LLM2Vec: ``mntp`` then ``llm2vec-simcse``), their
            names; each stage trains on the previous stage's output (:mod:`decone.train.stages`). Such a method has
            no views, objective or options of its own.
        backbone: ``encoder`` (BERT-like; the default) or ``decoder`` (a causal LM the method makes bidirectional,
            as LLM2Vec's steps do). ``benchmarks/results.py``'s head to head compares every ``sentences`` method
            for encoders on the same budget; the decoder methods have a table of their own there.
        revision: raised whenever what the method trains changes in a way its settings do not show (its loss, its
            views, a default); benchmark records carry it, so a changed method rebuilds its records.
    """

    name: str
    summary: str
    citation: str
    data: str
    views: Callable[[Any, Any], ViewFn] | None = None
    objective: Callable[[Any], Objective] | None = None
    defaults: dict = field(default_factory=dict)
    options: type | None = None
    sampler: Callable[..., list] | None = None
    stages: tuple[str, ...] = ()
    backbone: str = "encoder"
    revision: int = 1

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"method {self.name!r}: backbone must be one of {BACKBONES}, not {self.backbone!r}")
        if bool(self.stages) == (self.views is not None and self.objective is not None):
            raise ValueError(f"method {self.name!r}: give either views and objective, or stages")
        if self.stages and (self.options is not None or self.defaults):
            raise ValueError(f"method {self.name!r}: a staged method takes its settings from its stages")


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is registered twice")
    METHODS[method.name] = method
    return method


def option_types(name: str) -> dict[str, Any]:
    """Name -> type hint of a method's own settings; for a staged method, of every stage's (the union)."""
    method = get_method(name)
    if method.stages:
        hints: dict[str, Any] = {}
        for stage in method.stages:
            hints.update(option_types(stage))
        return hints
    return typing.get_type_hints(method.options) if method.options is not None else {}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


_ORDER = ("simcse", "simcse_sup", "mirror", "mirror_word", "scl")  # the README's order first, then alphabetical
for _name in sorted((m.name for m in pkgutil.iter_modules(__path__)), key=lambda n: (n not in _ORDER, _ORDER.index(n) if n in _ORDER else 0, n)):
    importlib.import_module(f"{__name__}.{_name}")


def _own_first(options) -> list[tuple[str, Any]]:
    """An options instance's (name, value) pairs, the method's own settings before those it inherits (LoRA's)."""
    inherited = {f.name for base in type(options).__mro__[1:] if is_dataclass(base) for f in fields(base)}
    return sorted(asdict(options).items(), key=lambda kv: kv[0] in inherited)


def method_table() -> str:
    """The README's method table, generated from the registry (a test keeps the README equal to it)."""
    rows = ["| method | data | pooling | head | T | lr | batch | max len | own settings (`--set`) | paper |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for m in METHODS.values():
        d = m.defaults
        own = ", ".join(f"{k} {v!r}" if isinstance(v, str) else f"{k} {v}" for k, v in _own_first(m.options())) \
            if m.options else ""
        if m.stages:
            own = "stages: " + " → ".join(f"`{s}`" for s in m.stages) + " (each stage's defaults and settings)"
        paper = m.citation.split(", ")[-1]
        data = m.data if m.backbone == "encoder" else f"{m.data} ({m.backbone}s)"
        rows.append(f"| `{m.name}` | {data} | {d.get('pooling', '')} | {d.get('head', '')} | {d.get('temperature', '–')} "
                    f"| {d.get('lr', '')} | {d.get('batch_size', '')} | {d.get('max_length', '')} | {own} | {paper} |")
    return "\n".join(rows)
