"""TensorBoard logging (decone.tensorboard): every numeric train_log.jsonl field becomes a scalar, read back with
TensorBoard's own EventAccumulator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("tensorboard", reason="TensorBoard logging needs the export extra: pip install 'decone[export]' "
                                          "(tensorboard)")

from decone.tensorboard import RUNS_DIR, TensorBoardCallback, scalars, tag_for, write_log  # noqa: E402

from tests.conftest import WORDS  # noqa: E402


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@dataclass
class FakeConfig:
    method: str = "simcse"
    lr: float = 3e-5


def test_rows_become_scalars(tmp_path):
    state = SimpleNamespace(output_dir=tmp_path, step=0, config=FakeConfig())
    cb = TensorBoardCallback()
    cb.on_train_begin(state)
    rows = [
        {"step": 10, "epoch": 0, "loss": 2.5, "lr": 3e-5, "sentences_per_s": 120.5, "threads": 2},
        {"step": 20, "epoch": 0, "loss": 1.25, "lr": 2e-5, "sentences_per_s": 130.0, "eval_spearman": 61.5,
         "isotropy": 0.42, "note": "text is skipped", "best": True, "diag": {"uniformity": -1.5}},
    ]
    for row in rows:
        state.step = row["step"]
        cb.on_log(state, row)
    cb.on_train_end(state)
    got = read_scalars(tmp_path / RUNS_DIR)
    assert got["train/loss"] == [(10, 2.5), (20, 1.25)]
    assert [s for s, _ in got["train/lr"]] == [10, 20] and got["train/lr"][1][1] == pytest.approx(2e-5)
    assert got["train/sentences_per_s"][1] == (20, 130.0)
    assert got["train/threads"] == [(10, 2.0)]
    assert got["eval/spearman"] == [(20, 61.5)]
    assert got["metrics/isotropy"] == [(20, pytest.approx(0.42))]
    assert got["metrics/diag/uniformity"] == [(20, -1.5)]
    assert not any("note" in t or "best" in t or t.endswith("step") for t in got)


def test_tags_and_flattening():
    assert tag_for("loss") == "train/loss"
    assert tag_for("eval_spearman") == "eval/spearman"
    assert tag_for("alignment") == "metrics/alignment"
    assert tag_for("custom/x") == "custom/x"
    assert dict(scalars({"step": 3, "a": 1, "b": {"c": 2.0}, "d": None, "e": False})) == {"metrics/a": 1.0,
                                                                                          "metrics/b/c": 2.0}


def test_explicit_log_dir_and_jsonl_conversion(tmp_path):
    log = tmp_path / "train_log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0}]))
    out = write_log(log, tmp_path / "tb")
    assert read_scalars(out)["train/loss"] == [(1, 3.0), (2, 2.0)]


def test_missing_package_is_one_line(monkeypatch):
    import builtins

    from decone.errors import DeconeError

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(DeconeError, match="tensorboard"):
        TensorBoardCallback()


def test_trainer_writes_tensorboard_events(tiny_model_dir, tmp_path):
    """The real trainer's on_log hook: a 3-step run logs its loss at every step under OUTPUT/runs."""
    from decone.train import TrainConfig, fit

    data = tmp_path / "train.txt"
    data.write_text("".join(f"{' '.join(WORDS[i:i + 6])}\n" for i in range(40)))
    out = tmp_path / "run"
    cfg = TrainConfig(method="simcse", model=str(tiny_model_dir), data=str(data), output=str(out), max_steps=3,
                      batch_size=8, log_every=1, bf16=False, adaptive_threads=False)
    fit(cfg, callbacks=[TensorBoardCallback()])
    got = read_scalars(out / RUNS_DIR)
    logged = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]
    losses = [(r["step"], r["loss"]) for r in logged if "loss" in r]
    assert [s for s, _ in got["train/loss"]] == [s for s, _ in losses] == [1, 2, 3]
    assert [v for _, v in got["train/loss"]] == pytest.approx([v for _, v in losses], rel=1e-6)
