"""Contrastive Tension: two towers with separate weights, the loss against a hand-written reference, the saved tower."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from decone.errors import ConfigError
from decone.train import TrainConfig, fit
from tests.methods.helpers import build, loss_only, step, trained_folder_round_trip, views, write_corpus


def test_loss_is_the_symmetric_cross_entropy_of_scaled_cosines(tiny_model_dir):
    model, _ = build("ct", tiny_model_dir)
    a, b = torch.randn(5, 32), torch.randn(5, 32)
    got = model.objective.loss_from_embeddings([a, b])
    ref = 0.0
    for i in range(5):  # by hand: row i against all of b, column i against all of a, scale 1/0.05
        row = torch.stack([F.cosine_similarity(a[i], b[j], dim=0) for j in range(5)]) / 0.05
        col = torch.stack([F.cosine_similarity(a[j], b[i], dim=0) for j in range(5)]) / 0.05
        ref = ref + (-torch.log_softmax(row, 0)[i] - torch.log_softmax(col, 0)[i]) / 2
    assert torch.allclose(got, ref / 5, atol=1e-5)


def test_the_towers_start_equal_and_train_apart(tiny_model_dir):
    model, cfg = build("ct", tiny_model_dir)
    second = model.objective.second
    pairs = list(zip(model.encoder.parameters(), second.parameters()))
    assert all(torch.equal(p, q) and p is not q for p, q in pairs)
    v = views((model, cfg))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    step(model, opt, v)
    assert any(not torch.equal(p, q) for p, q in pairs)  # different dropout, different gradients
    assert model.objective.logit_scale.grad is not None and model.objective.logit_scale.grad != 0


def test_one_step_lowers_the_objective(tiny_model_dir):
    model, cfg = build("ct", tiny_model_dir)
    model.eval()
    v = views((model, cfg))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    first = loss_only(model, v)
    step(model, opt, v)
    assert loss_only(model, v) < first


def test_gradcache_is_refused_with_the_reason(tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError, match="--mini-batch-size: ct: Contrastive Tension trains two encoders"):
        fit(TrainConfig(method="ct", model=str(tiny_model_dir), data=str(write_corpus(tmp_path)),
                        output=str(tmp_path / "out"), max_steps=1, batch_size=8, bf16=False, mini_batch_size=2))
    assert not (tmp_path / "out").exists()


def test_lora_is_refused_with_the_reason(tiny_model_dir, tmp_path):
    """The second tower is a whole trainable copy: LoRA on the first alone would save nothing and train unequal towers."""
    with pytest.raises(ConfigError, match="--lora-r: ct: its second tower is a whole trainable copy"):
        fit(TrainConfig(method="ct", model=str(tiny_model_dir), data=str(write_corpus(tmp_path)),
                        output=str(tmp_path / "out"), max_steps=1, batch_size=8, bf16=False, lora_r=2))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tower", [1, 2])
def test_trains_and_saves_the_chosen_tower(tiny_model_dir, tmp_path, tower):
    from safetensors.torch import load_file

    out = tmp_path / f"ct{tower}"
    fit(TrainConfig(method="ct", model=str(tiny_model_dir), data=str(write_corpus(tmp_path)), output=str(out),
                    max_steps=2, batch_size=8, bf16=False, lr=1e-3, options={"tower": tower}, keep_checkpoint=True))
    assert trained_folder_round_trip(out) < 1e-5
    saved = load_file(out / "model.safetensors")
    ckpt = load_file(out / "checkpoint" / "model.safetensors")
    prefix = "encoder.model." if tower == 1 else "objective.second.model."
    key = "embeddings.word_embeddings.weight"
    assert torch.equal(saved[key], ckpt[prefix + key])
    other = "objective.second.model." if tower == 1 else "encoder.model."
    assert not torch.equal(saved[key], ckpt[other + key])
    with pytest.raises(ConfigError, match="tower must be 1 or 2"):
        TrainConfig(method="ct", model="m", options={"tower": 3}).resolved()
