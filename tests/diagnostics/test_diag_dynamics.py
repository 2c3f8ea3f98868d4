"""DynamicsCallback through the trainer's callback protocol with a fake state, and plot_dynamics standalone."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from decone.diagnostics.dynamics import DynamicsCallback, make_dynamics_callback, plot_dynamics

WORDS = "the a cat dog sat mat man woman ran good bad movie film great happy sad day night city car road".split()


@dataclass
class Config:
    diagnose_every: int = 2
    eval_data: str | None = None
    seed: int = 0


@dataclass
class State:
    encoder: object
    output_dir: Path
    log_path: Path
    config: Config = field(default_factory=Config)
    step: int = 0
    max_steps: int = 5


def probe_data(n: int = 24):
    rng = random.Random(0)
    sents = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) for _ in range(n)]
    pairs = [(sents[i], sents[i + 1] if i % 3 else sents[i], 5.0 if i % 3 == 0 else rng.uniform(0, 3))
             for i in range(0, n - 1)]
    return sents, pairs


def test_callback_protocol(tiny_encoder, tmp_path):
    sents, pairs = probe_data()
    cb = DynamicsCallback(every=2, probe_sentences=sents, dev_pairs=pairs)
    state = State(tiny_encoder, tmp_path, tmp_path / "train_log.jsonl")
    tiny_encoder.train()
    torch_rng, np_rng = torch.get_rng_state(), np.random.get_state()

    first = cb.on_train_begin(state)
    for key in ("probe_avg_cosine", "probe_isoscore", "probe_var_top1", "probe_effective_rank", "probe_uniformity",
                "probe_alignment", "probe_dev_spearman", "probe_seconds"):
        assert key in first, key
    assert tiny_encoder.training  # train mode restored
    assert torch.equal(torch.get_rng_state(), torch_rng)  # training randomness untouched
    assert np.random.get_state()[1].tolist() == np_rng[1].tolist()

    rows = {0: first}
    logged = [{"step": 0, **first}]
    for step in range(1, 6):
        state.step = step
        row = cb.on_step_end(state)
        if row:
            rows[step] = row
        logged.append({"step": step, "loss": 2.0 / step, **(row or {})})
    assert sorted(rows) == [0, 2, 4, 5]  # every 2 steps, and the last step
    assert "probe_overhead" in rows[2] and 0 < rows[2]["probe_overhead"] <= 1
    # the model did not change, so neither do the metrics
    assert rows[4]["probe_avg_cosine"] == pytest.approx(first["probe_avg_cosine"], abs=1e-6)

    state.log_path.write_text("".join(json.dumps(r) + "\n" for r in logged))
    cb.on_train_end(state)
    png = tmp_path / "dynamics.png"
    assert png.exists() and png.stat().st_size > 10_000
    assert [h["step"] for h in cb.history] == [0, 2, 4, 5]


def test_probe_without_pairs(tiny_encoder):
    sents, _ = probe_data()
    row = DynamicsCallback(every=10, probe_sentences=sents).probe(tiny_encoder)
    assert "probe_alignment" not in row and "probe_dev_spearman" not in row
    assert -1.0 <= row["probe_avg_cosine"] <= 1.0


def test_plot_dynamics_standalone(tmp_path):
    log = tmp_path / "train_log.jsonl"
    rows = [{"step": s, "loss": 3.0 - s / 100, "eval_spearman": 50 + s / 10} for s in range(0, 101, 10)]
    for r in rows[::2]:
        r.update(probe_avg_cosine=0.6 - r["step"] / 400, probe_isoscore=0.05 + r["step"] / 1000,
                 probe_uniformity=-1.5 - r["step"] / 100, probe_overhead=0.03)
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    out = plot_dynamics(log, tmp_path / "plots" / "dyn.png")
    assert out == tmp_path / "plots" / "dyn.png" and out.stat().st_size > 10_000
    assert plot_dynamics(tmp_path / "missing.jsonl", tmp_path / "x.png") is None


def test_make_dynamics_callback_falls_back_to_eval_data(tmp_path, monkeypatch):
    monkeypatch.setenv("DECONE_DATA", str(tmp_path / "empty"))
    sents, pairs = probe_data(40)
    dev = tmp_path / "dev.csv"
    dev.write_text("".join(f"g\tf\t2012\t{i}\t{s:.2f}\t{a}\t{b}\n" for i, (a, b, s) in enumerate(pairs)))
    cb = make_dynamics_callback(Config(diagnose_every=7, eval_data=str(dev)), n_pairs=10)
    assert cb.every == 7 and len(cb.dev_pairs) == 10
    from decone.errors import DataError

    with pytest.raises(DataError, match="--diagnose-every needs probe data"):
        make_dynamics_callback(Config(diagnose_every=7))


@pytest.mark.shared
def test_default_probe_is_stsb_dev(shared):
    cb = make_dynamics_callback(Config(diagnose_every=50))
    assert len(cb.dev_pairs) == 256 and 400 <= len(cb.probe_sentences) <= 512
