"""--max-memory: the size parser, the step-memory estimate and the GradCache mini-batch the trainer picks from it."""

from __future__ import annotations

import pytest

from decone import memory
from decone.errors import ConfigError


@pytest.mark.parametrize("text,size", [("4GB", 4 * 2**30), ("3.5g", int(3.5 * 2**30)), ("900MB", 900 * 2**20),
                                       (" 2 GiB ", 2 * 2**30), ("1t", 2**40)])
def test_parse_size(text, size):
    assert memory.parse_size(text) == size


@pytest.mark.parametrize("text,match", [("lots", "expected a size"), ("4 parsecs", "expected a size"),
                                        ("100MB", "too small"), ("-1GB", "expected a size")])
def test_parse_size_refuses(text, match):
    with pytest.raises(ConfigError, match=match):
        memory.parse_size(text)


def test_activation_estimate_counts_tokens_layers_and_attention():
    from types import SimpleNamespace

    config = SimpleNamespace(hidden_size=384, num_hidden_layers=6, num_attention_heads=12)
    one = memory.activation_bytes(config, 1, 2, 50)
    assert one == 2 * 50 * 6 * 4 * (18 * 384 + 3 * 12 * 50)  # the hand count: per token and layer, fp32
    assert memory.activation_bytes(config, 200, 2, 50) == 200 * one  # linear in examples
    gpt = SimpleNamespace(n_embd=384, n_layer=6, n_head=12)  # GPT-2's names for the same sizes
    assert memory.activation_bytes(gpt, 1, 2, 50) == one


def test_choose_mini_batch_fits_the_budget():
    import torch
    from types import SimpleNamespace

    model = torch.nn.Linear(1000, 1000)  # 1M trainable parameters: 16 MB of state
    config = SimpleNamespace(hidden_size=256, num_hidden_layers=4, num_attention_heads=4)
    fixed = memory.fixed_bytes(model)
    per = memory.activation_bytes(config, 1, 2, 32)
    assert memory.choose_mini_batch(model, config, 64, 2, 32, fixed + 64 * per) == (0, fixed + 64 * per, fixed + 64 * per)
    size, whole, fitted = memory.choose_mini_batch(model, config, 64, 2, 32, fixed + 20 * per + 5)
    assert size == 20 and whole == fixed + 64 * per and fitted <= fixed + 20 * per + 5
    with pytest.raises(ConfigError, match="no room for a mini-batch of 2"):
        memory.choose_mini_batch(model, config, 64, 2, 32, fixed + per)


def test_trainer_uses_gradcache_when_the_batch_exceeds_max_memory(tiny_model_dir, tmp_path, capsys):
    from decone.data import Dataset
    from decone.train import TrainConfig, Trainer

    data = Dataset([(f"sentence {i} about a cat and a dog",) for i in range(64)], "mem")
    base = dict(method="simcse", model=str(tiny_model_dir), batch_size=32, max_length=16, max_steps=2, bf16=False,
                pooling="mean")
    probe = Trainer(TrainConfig(output=str(tmp_path / "probe"), **base), data=data)
    probe.setup()
    assert probe.config.mini_batch_size == 0  # the default budget (70% of free memory): a tiny batch fits
    fixed = memory.fixed_bytes(probe.model)
    per = memory.activation_bytes(probe.encoder.model.config, 1, 2, 16)
    budget = f"{(fixed + 10 * per) / 2**20:.3f}MB"
    trainer = Trainer(TrainConfig(output=str(tmp_path / "fit"), max_memory=budget, **base), data=data)
    summary = trainer.run()
    assert trainer.config.mini_batch_size == 10 and summary["steps"] == 2
    assert "GradCache with mini-batches of 10" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--max-memory"):
        TrainConfig(output=str(tmp_path / "x"), max_memory="huge", **base).resolved()
