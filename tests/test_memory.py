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


def test_largest_mini_batch():
    fixed, per = 10_000, 100
    assert memory.largest_mini_batch(fixed, per, 64, fixed + 64 * per) == 64  # the whole batch fits
    assert memory.largest_mini_batch(fixed, per, 64, fixed + 20 * per + 5) == 20
    assert memory.largest_mini_batch(fixed, per, 64, fixed + per) == 1  # not even a pair
    assert memory.largest_mini_batch(fixed, per, 64, fixed - 5) == 0


def test_optimizer_bytes_count_trainable_parameters_only():
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.Linear(10, 10))
    model[1].requires_grad_(False)
    assert memory.optimizer_bytes(model) == 12 * 110


def _trainer(tiny_model_dir, tmp_path, name, **kw):
    from decone.data import Dataset
    from decone.train import TrainConfig, Trainer

    data = Dataset([(f"sentence {i} about a cat and a dog",) for i in range(64)], "mem")
    return Trainer(TrainConfig(method="simcse", model=str(tiny_model_dir), output=str(tmp_path / name), batch_size=32,
                               max_length=16, max_steps=2, bf16=False, pooling="mean", **kw), data=data)


def test_trainer_uses_gradcache_when_the_batch_exceeds_max_memory(tiny_model_dir, tmp_path, capsys, monkeypatch):
    held = 2**30
    monkeypatch.setattr(memory, "held_and_free", lambda device: (held, 64 * 2**30))
    released = []  # the real mallopt would stay on for the rest of the test process: tested in a subprocess below
    monkeypatch.setattr(memory, "return_freed_memory", lambda: released.append(True) or True)
    probe = _trainer(tiny_model_dir, tmp_path, "probe")
    probe.setup()
    assert probe.config.mini_batch_size == 0  # the default budget: held + 70% of 64 GB free
    fixed = held + memory.optimizer_bytes(probe.model)
    per = memory.activation_bytes(probe.encoder.model.config, 1, 2, 16)
    trainer = _trainer(tiny_model_dir, tmp_path, "fit", max_memory=f"{fixed + 10.5 * per}B")
    summary = trainer.run()
    assert trainer.config.mini_batch_size == 10 and summary["steps"] == 2
    err = capsys.readouterr().err
    assert "GradCache with mini-batches of 10" in err and "go back to the system" in " ".join(err.split())
    assert released == [True]  # with --max-memory only: the default budget (the probe above) leaves malloc alone
    with pytest.raises(ConfigError, match="not even a mini-batch of 2 fits"):
        _trainer(tiny_model_dir, tmp_path, "tight", max_memory=f"{fixed + per}B").setup()
    from decone.train import TrainConfig

    with pytest.raises(ConfigError, match="--max-memory"):
        TrainConfig(method="simcse", model="m", max_memory="huge").resolved()


def test_without_max_memory_an_estimate_that_nothing_fits_only_warns(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "held_and_free", lambda device: (2**30, 0))  # nothing free at all
    trainer = _trainer(tiny_model_dir, tmp_path, "warn")
    trainer.setup()
    assert trainer.config.mini_batch_size == 0
    assert "not even a mini-batch of 2 fits" in capsys.readouterr().err


_RSS_SCRIPT = """
import sys
import numpy as np
from decone import memory

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

if sys.argv[1] == "fixed":
    assert memory.return_freed_memory()
# blocks of 4-24 MiB of changing sizes, written and freed, the way a step's activations come and go, while small
# objects made during the step stay alive (a logged loss, a kept gradient): once glibc's dynamic threshold has risen
# past the blocks' sizes they come from its heap, and the survivors above them keep the freed space from being trimmed
start = rss_mb()
survivors = []
for i in range(40):
    blocks = [np.ones((1 + (i * 7 + j) % 6) * 2**20, dtype=np.float32) for j in range(8)]
    survivors.append(np.ones(4096, dtype=np.float32))
    del blocks
print(rss_mb() - start)
"""


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc's mallopt: Linux")
def test_return_freed_memory_gives_freed_blocks_back():
    """After return_freed_memory(), freed large blocks leave the resident set; by default glibc keeps them."""
    import subprocess
    import sys

    grown = {mode: float(subprocess.run([sys.executable, "-c", _RSS_SCRIPT, mode], capture_output=True, text=True,
                                        check=True, timeout=120).stdout) for mode in ("default", "fixed")}
    assert grown["fixed"] < 20, grown  # MiB left resident after the blocks are freed
    assert grown["default"] > grown["fixed"] + 50, grown
