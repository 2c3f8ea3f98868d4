"""The output folder: nothing left by a run that failed early, a clean finished folder with the usual file modes,
the checkpoint kept after a later failure, and a lock against two runs writing into one folder."""

from __future__ import annotations

import os
import stat

import pytest

from decone.errors import ConfigError, DeconeError
from decone.train import TrainConfig, fit
from decone.train.checkpoint import LOCK_FILE

SENTS = "\n".join(f"sentence number {i} about the cat and the dog" for i in range(24)) + "\n"


def _cfg(model, tmp_path, **kw):
    data = tmp_path / "s.txt"
    data.write_text(SENTS)
    base = dict(method="simcse", model=str(model), data=str(data), output=str(tmp_path / "out"), max_steps=4,
                batch_size=4, bf16=False, save_every=2, log_every=1)
    return TrainConfig(**{**base, **kw})


class Boom:
    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, state):
        if state.step == self.at:
            raise DeconeError(f"loss became nan at step {state.step}")


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing(tiny_model_dir, tmp_path):
    with pytest.raises(DeconeError):
        fit(_cfg(tiny_model_dir, tmp_path), callbacks=[Boom(1)])
    assert not (tmp_path / "out").exists()


def test_a_run_that_fails_after_a_checkpoint_keeps_it_and_resumes(tiny_model_dir, tmp_path):
    with pytest.raises(DeconeError):
        fit(_cfg(tiny_model_dir, tmp_path), callbacks=[Boom(3)])
    assert (tmp_path / "out" / "checkpoint" / "trainer_state.json").exists()
    assert not (tmp_path / "out" / LOCK_FILE).exists()
    assert fit(_cfg(tiny_model_dir, tmp_path, resume=True))["steps"] == 4


def test_a_finished_run_is_a_clean_model_folder_with_usual_modes(tiny_model_dir, tmp_path):
    fit(_cfg(tiny_model_dir, tmp_path))
    out = tmp_path / "out"
    assert not (out / "checkpoint").exists() and not (out / LOCK_FILE).exists()
    umask = os.umask(0)
    os.umask(umask)
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o777 & ~umask if path.is_dir() else 0o666 & ~umask), (path, oct(mode))
    fit(_cfg(tiny_model_dir, tmp_path, output=str(tmp_path / "kept"), keep_checkpoint=True))
    assert (tmp_path / "kept" / "checkpoint" / "optimizer.pt").exists()


def test_a_second_run_into_a_locked_folder_stops_and_a_stale_lock_is_taken_over(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text(str(os.getppid()))  # a live process holds it
    with pytest.raises(ConfigError, match=f"another decone run \\(pid {os.getppid()}\\) is writing"):
        fit(_cfg(tiny_model_dir, tmp_path))
    assert (out / LOCK_FILE).exists()  # not ours to remove
    (out / LOCK_FILE).write_text("999999999")  # a killed run's lock: no such process
    fit(_cfg(tiny_model_dir, tmp_path))
    assert (out / "model.safetensors").exists() and not (out / LOCK_FILE).exists()
