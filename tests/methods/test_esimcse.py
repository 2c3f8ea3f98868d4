"""ESimCSE: word repetition, the momentum encoder's EMA rule, the queue filling and rolling, training end to end."""

from __future__ import annotations

import random

import pytest
import torch

from decone.errors import ConfigError
from decone.methods.esimcse import repeat_words
from decone.train import TrainConfig, fit
from tests.methods.helpers import SENTS, build, loss_only, saved_keys, step, trained_folder_round_trip, views, write_corpus


def test_word_repetition_repeats_whole_words_in_place():
    rng = random.Random(0)
    for text in SENTS:
        out = repeat_words(text, 0.32, rng)
        words, repeated = text.split(), out.split()
        extra = len(repeated) - len(words)
        assert 0 <= extra <= max(2, int(0.32 * len(words)))
        dedup = [w for i, w in enumerate(repeated) if not (i > 0 and repeated[i - 1] == w and w in words)]
        assert len(dedup) <= len(words) and set(repeated) == set(words)
    assert repeat_words("", 0.32, rng) == ""
    assert any(repeat_words("a b c d e f g h", 0.32, random.Random(s)) != "a b c d e f g h" for s in range(5))


def test_ema_moves_by_the_momentum_rule_and_the_queue_fills_and_rolls(tiny_model_dir):
    model, cfg = build("esimcse", tiny_model_dir, options={"momentum": 0.9, "queue_ratio": 1.5})
    obj = model.objective
    assert obj.queue_size == 12 and int(obj.queue_filled) == 0
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    before = [p.detach().clone() for p in obj.momentum_parameters()]
    v = views((model, cfg))
    obj.prepare(model, v, False)
    pending = obj.pending.clone()  # (8, d): the momentum embeddings of the positive view
    loss = model.compute_loss(v, None, False)
    opt.zero_grad()
    loss.backward()
    opt.step()
    obj.after_step(model)
    trained = [*model.encoder.parameters(), *model.head.parameters()]
    moved = 0
    for old, new_m, theta in zip(before, obj.momentum_parameters(), trained):
        assert torch.allclose(new_m, 0.9 * old + 0.1 * theta.detach(), atol=1e-6)
        moved += int(not torch.equal(new_m, old))
    assert moved > 0  # the momentum encoder did move
    assert int(obj.queue_filled) == 8 and int(obj.queue_position) == 8
    assert torch.equal(obj.queue[:8], pending)
    second = views((model, cfg), SENTS[8:16], seed=1)
    step(model, opt, second)  # 8 more: 4 fill the queue, 4 overwrite the oldest rows
    assert int(obj.queue_filled) == 12 and int(obj.queue_position) == 4
    assert torch.equal(obj.queue[8:12], obj.queue[8:12]) and not torch.equal(obj.queue[:4], pending[:4])
    assert torch.equal(obj.queue[4:8], pending[4:8])


def test_queued_embeddings_are_extra_negatives(tiny_model_dir):
    model, cfg = build("esimcse", tiny_model_dir)
    obj = model.objective
    a, p = torch.randn(4, 32), torch.randn(4, 32)
    plain = obj.loss_from_embeddings([a, p])
    obj.queue[:3] = torch.randn(3, 32)
    obj.queue_filled.fill_(3)
    assert obj.loss_from_embeddings([a, p]) > plain  # more negatives, larger InfoNCE


def test_one_step_lowers_the_objective(tiny_model_dir):
    model, cfg = build("esimcse", tiny_model_dir, options={"queue_ratio": 0.0})
    model.eval()
    v = views((model, cfg))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    first = loss_only(model, v)
    step(model, opt, v)
    assert loss_only(model, v) < first


def test_lora_is_refused_in_one_line_not_a_crash_at_the_first_step(tiny_model_dir, tmp_path):
    """The momentum encoder copies the encoder before LoRA wraps it: their parameters would not line up."""
    from tests._cli import run_cli

    out = tmp_path / "out"
    code, text = run_cli(["train", "esimcse", "--model", str(tiny_model_dir), "--data", str(write_corpus(tmp_path)),
                          "--output", str(out), "--max-steps", "1", "--batch-size", "4", "--lora-r", "2"])
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in text and len(errors) == 1, text
    assert "--lora-r: esimcse: its momentum encoder" in errors[0]
    assert not out.exists() or not any(out.iterdir())


def test_bad_options_are_one_line_errors(tiny_model_dir):
    with pytest.raises(ConfigError, match="momentum must be in"):
        TrainConfig(method="esimcse", model="m", options={"momentum": 1.5}).resolved()
    with pytest.raises(ConfigError, match="not a setting of esimcse"):
        TrainConfig(method="esimcse", model="m", options={"momentom": 0.9}).resolved()


@pytest.mark.parametrize("mini_batch_size", [0, 4])
def test_trains_saves_and_loads_in_sentence_transformers(tiny_model_dir, tmp_path, mini_batch_size):
    out = tmp_path / "esimcse"
    summary = fit(TrainConfig(method="esimcse", model=str(tiny_model_dir), data=str(write_corpus(tmp_path)),
                              output=str(out), max_steps=3, batch_size=8, bf16=False, lr=1e-3,
                              mini_batch_size=mini_batch_size))
    assert summary["steps"] == 3
    assert trained_folder_round_trip(out) < 1e-5
    assert not any(k.startswith(("momentum", "objective")) for k in saved_keys(out))
    assert not (out / "checkpoint").exists()
