"""Methods in stages (LLM2Vec: ``mntp`` then ``llm2vec-simcse``): each stage is a whole training run on the previous
stage's output, and an interrupted chain resumes where it stopped.

Layout: the last stage writes ``OUTPUT``; stage i < n writes ``OUTPUT.stages/<i>-<method>`` (a complete model folder,
kept: LLM2Vec's MNTP model is a model of its own) and, once finished, ``OUTPUT.stages/<i>-<method>.done.json`` with
its summary. ``--resume`` skips finished stages, resumes the stage that has a checkpoint and starts the rest;
``--overwrite`` starts every stage afresh. The plan is made before anything is written, so every rank of a
distributed run makes the same one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from decone.errors import ConfigError
from decone.methods import get_method
from decone.train.checkpoint import find_checkpoint
from decone.train.config import TrainConfig, stages_folder
from decone.train.trainer import Trainer


def plan(config: TrainConfig) -> list[tuple[TrainConfig, str]]:
    """Each stage's config (with its resume/overwrite decided) and what to do: ``done``, ``resume`` or ``start``.

    Raises:
        ConfigError: a stage's settings are bad, or OUTPUT / OUTPUT.stages hold an earlier run and neither
            ``--resume`` nor ``--overwrite`` was given.
    """
    config.resolved()  # every stage's settings, checked before anything trains
    work, final = stages_folder(config.output), Path(config.output)
    if config.resume and config.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    if not config.resume and not config.overwrite:
        for path, what in ((work, "the stages"), (final, "the output")):
            if path.exists() and any(path.iterdir()):
                raise ConfigError(f"{path}: holds {what} of an earlier run; pass --resume to continue it or "
                                  "--overwrite to replace it")
    if config.resume and not work.exists():
        raise ConfigError(f"{work}: --resume given but there are no stages to resume")
    steps, rerun = [], False  # once a stage (re)trains, every later stage starts afresh on its new output
    for i, stage in enumerate(config.stage_configs(), 1):
        out = Path(stage.output)
        if config.resume and not rerun and _marker(work, i, stage.method).exists():
            steps.append((stage, "done"))
            continue
        resume = config.resume and not rerun and out.exists() and find_checkpoint(out) is not None
        rerun = True
        steps.append((replace(stage, resume=resume, overwrite=not resume), "resume" if resume else "start"))
    return steps


def run_stages(config: TrainConfig, callbacks: Sequence = (), data=None, console=None) -> dict:
    """Train every stage of ``config.method`` in turn; returns the chain's summary (totals, plus ``stages``)."""
    steps = plan(config)
    work = stages_folder(config.output)
    main = os.environ.get("RANK", "0") == "0"
    if config.overwrite and main:
        shutil.rmtree(work, ignore_errors=True)
    summaries = []
    for i, (stage, action) in enumerate(steps, 1):
        marker = _marker(work, i, stage.method)
        head = f"stage {i}/{len(steps)}: {stage.method} on {stage.model} -> {stage.output}"
        if action == "done":
            print(f"{head}: finished earlier, skipped", file=sys.stderr)
            summaries.append(json.loads(marker.read_text()))
            continue
        print(head + (" (resuming from its checkpoint)" if action == "resume" else ""), file=sys.stderr)
        summary = {"method": stage.method, "output": stage.output,
                   **Trainer(stage, callbacks, data, console).run()}
        if main:
            marker.parent.mkdir(parents=True, exist_ok=True)
            _write_json(marker, summary)
        summaries.append(summary)
    if main:
        record_stages(Path(config.output), config, summaries)
    return {**summaries[-1], "steps": sum(s["steps"] for s in summaries),
            "wall_time_s": round(sum(s["wall_time_s"] for s in summaries), 2), "stages": summaries}


def record_stages(folder: Path, config: TrainConfig, summaries: list[dict]) -> None:
    """Make the final folder describe the whole chain: its ``decone.json`` names the staged method, the starting
    model and every stage's summary; the model card is rewritten from it."""
    from decone import card

    path = folder / "decone.json"
    info = json.loads(path.read_text())
    info["method"] = config.method
    info["config"] = {**info.get("config", {}), "method": config.method, "model": config.model}
    info["stages"] = summaries
    _write_json(path, info)
    try:
        card.write_card(folder)
    except Exception as exc:  # documentation: its failure must not lose the model
        print(f"warning: no model card written ({exc})", file=sys.stderr)


def _marker(work: Path, i: int, method: str) -> Path:
    return work / f"{i}-{method}.done.json"


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str))
    os.replace(tmp, path)


def is_staged(config: TrainConfig) -> bool:
    return bool(get_method(config.method).stages)


