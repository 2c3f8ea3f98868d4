"""TensorBoard logging of a training run: every numeric field of every ``train_log.jsonl`` row as a scalar.

A trainer callback (``on_train_begin``, ``on_log``, ``on_train_end``; see ``decone.train.callbacks.Callback``)::

    from decone.tensorboard import TensorBoardCallback
    fit(config, callbacks=[TensorBoardCallback()])     # events in OUTPUT/runs/; `tensorboard --logdir OUTPUT/runs`

Tags: ``loss``, ``lr``, ``sentences_per_s``, ``epoch``, ``threads`` -> ``train/<key>``; ``eval_<name>`` ->
``eval/<name>``; anything else (diagnostics metrics, a method's own fields) -> ``metrics/<key>``; nested dicts are
flattened with ``/``. The step is the row's ``step``. A resumed run drops the events logged after its checkpoint
(``purge_step``), as ``train_log.jsonl`` does. ``write_log(train_log, log_dir)`` converts a finished run's log.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from decone.errors import DeconeError

RUNS_DIR = "runs"
TRAIN_KEYS = ("loss", "lr", "sentences_per_s", "epoch", "threads")


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise DeconeError("TensorBoard logging needs the tensorboard package: pip install 'decone[export]'") from None
    return SummaryWriter


def tag_for(key: str) -> str:
    """The TensorBoard tag of a log field."""
    if "/" in key:
        return key
    if key in TRAIN_KEYS:
        return f"train/{key}"
    if key.startswith("eval_"):
        return f"eval/{key[5:]}"
    return f"metrics/{key}"


def scalars(row: dict) -> Iterator[tuple[str, float]]:
    """(tag, value) for every numeric field of a log row (not ``step``; booleans, strings and None skipped)."""
    for key, value in row.items():
        if key != "step":
            yield from _flatten(tag_for(key), value)


def _flatten(name: str, value) -> Iterator[tuple[str, float]]:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _flatten(f"{name}/{key}", sub)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield name, float(value)


class TensorBoardCallback:
    """Mirror ``train_log.jsonl`` rows into TensorBoard event files.

    Args:
        log_dir: where the event files go; default ``OUTPUT/runs`` (the run's output folder).
        flush_secs: how often the writer flushes to disk.
    """

    def __init__(self, log_dir: str | os.PathLike | None = None, flush_secs: int = 30):
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.flush_secs = flush_secs
        self.writer = None
        _summary_writer()  # fail now, with one line, not after the first training steps

    def _open(self, state: Any) -> None:
        if self.writer is not None:
            return
        if self.log_dir is None:
            self.log_dir = Path(getattr(state, "output_dir", ".")) / RUNS_DIR
        self.log_dir.mkdir(parents=True, exist_ok=True)
        step = int(getattr(state, "step", 0) or 0)
        self.writer = _summary_writer()(log_dir=str(self.log_dir), flush_secs=self.flush_secs,
                                        purge_step=step + 1 if step > 0 else None)

    def on_train_begin(self, state: Any) -> None:
        self._open(state)
        config = getattr(state, "config", None)
        if config is not None and int(getattr(state, "step", 0) or 0) == 0:
            try:
                from dataclasses import asdict, is_dataclass

                settings = asdict(config) if is_dataclass(config) else dict(vars(config))
                text = "\n".join(f"    {k}: {json.dumps(v, default=str)}" for k, v in sorted(settings.items()))
                self.writer.add_text("config", text, 0)
            except Exception:  # noqa: BLE001 - the settings are a nicety; the scalars matter
                pass
        return None

    def on_log(self, state: Any, row: dict) -> None:
        self._open(state)
        step = int(row.get("step", getattr(state, "step", 0)) or 0)
        for tag, value in scalars(row):
            self.writer.add_scalar(tag, value, step)

    def on_train_end(self, state: Any) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None


def write_log(train_log: str | os.PathLike, log_dir: str | os.PathLike | None = None) -> Path:
    """Write a finished run's ``train_log.jsonl`` as TensorBoard events (default: beside it, in ``runs/``)."""
    train_log = Path(train_log)
    log_dir = Path(log_dir) if log_dir is not None else train_log.parent / RUNS_DIR
    cb = TensorBoardCallback(log_dir)
    cb._open(None)
    for line in train_log.read_text().splitlines():
        if line.strip():
            cb.on_log(None, json.loads(line))
    cb.on_train_end(None)
    return log_dir
