"""The run's output folder: checks before anything is written, a lock, atomic checkpoints, and cleanup.

* ``checkpoint/`` holds the :class:`~decone.train.Trainable`'s weights (the objective's modules too), the optimizer,
  the schedule, the RNG states and the step; it is written to a temporary folder and renamed into place, so a kill at
  any moment leaves the previous complete checkpoint.
* A run that fails before its first checkpoint removes the folder it created; one that fails later keeps it and
  says that ``--resume`` continues it. A finished run removes ``checkpoint/`` unless ``keep_checkpoint``.
* ``.decone.lock`` (the writer's pid) stops a second run writing into the same folder; a lock whose process is gone
  (a killed run) is taken over.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from decone.encoder.folder import apply_default_modes
from decone.errors import ConfigError

CHECKPOINT = "checkpoint"
LOG_FILE = "train_log.jsonl"
LOCK_FILE = ".decone.lock"


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(output: Path, model, optimizer, scheduler, state) -> None:
    """Write ``output/checkpoint`` atomically: a temporary folder, then a rename over the old one."""
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=output))
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(_untie(weights), tmp / "model.safetensors")
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": _rng_state()},
                   tmp / "optimizer.pt")
        (tmp / "trainer_state.json").write_text(json.dumps({
            "step": state.step, "epoch": state.epoch, "best_metric": state.best_metric, "best_step": state.best_step,
            "config": asdict(state.config),
        }, indent=2))
        apply_default_modes(tmp)
        final, old = output / CHECKPOINT, output / f".{CHECKPOINT}.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _untie(weights: dict) -> dict:
    """safetensors refuses tensors that share memory (tied weights, e.g. a decoder tied to the encoder): clone them."""
    seen: set = set()
    out = {}
    for k, v in weights.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
        out[k] = v.clone() if key in seen else v
        seen.add(key)
    return out


def find_checkpoint(output: Path) -> Path | None:
    """The latest complete checkpoint (also after a crash between the two renames of a save)."""
    for name in (CHECKPOINT, f".{CHECKPOINT}.old"):
        path = output / name
        if (path / "trainer_state.json").exists():
            return path
    return None


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    model.load_state_dict(load_file(path / "model.safetensors"))
    extra = torch.load(path / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    _set_rng_state(extra["rng"])
    return json.loads((path / "trainer_state.json").read_text())


def prepare_output(config) -> Path | None:
    """Check the output folder before anything is written. Returns the checkpoint to resume from, if any."""
    out = Path(config.output)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: output exists and is a file")
    if not out.exists() or not any(p.name != LOCK_FILE for p in out.iterdir()):
        if config.resume:
            raise ConfigError(f"{out}: --resume given but there is no run to resume in this folder")
        return None
    is_run = (out / "decone.json").exists() or find_checkpoint(out) is not None or (out / LOG_FILE).exists()
    if config.resume:
        ckpt = find_checkpoint(out)
        if ckpt is None:
            raise ConfigError(f"{out}: --resume given but the folder has no checkpoint")
        return ckpt
    if config.overwrite:
        return None
    if is_run:
        raise ConfigError(f"{out}: holds an earlier decone run; pass --resume to continue it or --overwrite to replace it")
    raise ConfigError(f"{out}: exists and is not a decone run; pass --overwrite to replace its contents")


class OutputFolder:
    """The output folder's life: lock, create, and on exit unlock, clean up after failure or tidy after success."""

    def __init__(self, path: str | os.PathLike, keep_checkpoint: bool = False):
        self.path = Path(path)
        self.keep_checkpoint = keep_checkpoint
        self.created = False
        self.locked = False

    def open(self, overwrite: bool) -> None:
        """Take the lock and make the folder (emptied first with ``overwrite`` when not resuming)."""
        self.created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock()
        if overwrite:
            for p in self.path.iterdir():
                if p.name != LOCK_FILE:
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()

    def _lock(self) -> None:
        lock = self.path / LOCK_FILE
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid = _read_pid(lock)
            if pid is not None and pid != os.getpid() and _alive(pid):
                if self.created:
                    self.created = False  # not ours to remove
                raise ConfigError(f"{self.path}: another decone run (pid {pid}) is writing into this folder") from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        self.locked = True

    def close(self, finished: bool) -> str | None:
        """Unlock; after a failure remove a folder this run created and never checkpointed. Returns a note or None."""
        note = None
        if finished and not self.keep_checkpoint:
            shutil.rmtree(self.path / CHECKPOINT, ignore_errors=True)
        elif not finished and self.path.exists():
            if find_checkpoint(self.path) is None and self.created:
                shutil.rmtree(self.path, ignore_errors=True)
            elif find_checkpoint(self.path) is not None:
                note = f"{self.path} keeps the last checkpoint; continue the run with --resume"
        if self.locked:
            (self.path / LOCK_FILE).unlink(missing_ok=True)
            self.locked = False
        return note


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
