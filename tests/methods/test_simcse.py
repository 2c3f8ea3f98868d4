"""Unsupervised SimCSE: the paper's defaults, two identical views (dropout alone makes them differ), InfoNCE equal to
a hand-written reference, one step lowering it, and a saved folder without the train-only MLP head."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from decone.methods import get_method
from decone.train import TrainConfig, fit
from tests.methods.helpers import SENTS, build, loss_only, saved_keys, step, trained_folder_round_trip, views, write_corpus


def test_paper_defaults_and_citation():
    m = get_method("simcse")
    assert (m.defaults["temperature"], m.defaults["head"], m.defaults["pooling"]) == (0.05, "mlp-train", "cls_before_pooler")
    assert (m.defaults["batch_size"], m.defaults["max_length"], m.defaults["lr"]) == (64, 32, 3e-5)
    assert "arXiv:2104.08821" in m.citation and m.data == "sentences"


def test_views_are_the_sentence_twice_and_dropout_makes_them_differ(tiny_model_dir):
    model, cfg = build("simcse", tiny_model_dir)
    v = views((model, cfg))
    assert v == [SENTS[:8], SENTS[:8]]
    model.train()
    z = model.embed(v[0] + v[1], False)  # (16, d): one forward pass, a dropout mask per row
    assert not torch.allclose(z[:8], z[8:])
    model.eval()
    z = model.embed(v[0] + v[1], False)
    assert torch.allclose(z[:8], z[8:], atol=1e-6)


def test_loss_is_infonce_over_in_batch_negatives(tiny_model_dir):
    model, _ = build("simcse", tiny_model_dir)
    a, b = torch.randn(6, 32), torch.randn(6, 32)
    ref = 0.0
    for i in range(6):  # by hand: -log of the softmax of cos(a_i, b_j) / 0.05 at j = i
        logits = [F.cosine_similarity(a[i], b[j], dim=0) / 0.05 for j in range(6)]
        ref += -(logits[i] - math.log(sum(math.exp(x) for x in logits))) / 6
    assert abs(float(model.objective.loss_from_embeddings([a, b])) - float(ref)) < 1e-4


def test_one_step_lowers_the_objective(tiny_model_dir):
    model, cfg = build("simcse", tiny_model_dir)
    model.eval()  # the same embeddings before and after, so the comparison sees the step alone
    v = views((model, cfg))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    first = loss_only(model, v)
    step(model, opt, v)
    assert loss_only(model, v) < first


def test_the_train_only_head_is_trained_and_left_out_of_the_saved_folder(tiny_model_dir, tmp_path):
    out = tmp_path / "simcse"
    fit(TrainConfig(method="simcse", model=str(tiny_model_dir), data=str(write_corpus(tmp_path)), output=str(out),
                    max_steps=2, batch_size=8, bf16=False, lr=1e-3, keep_checkpoint=True))
    from safetensors.torch import load_file

    ckpt = load_file(out / "checkpoint" / "model.safetensors")
    assert any(k.startswith("head.") for k in ckpt)  # trained with the MLP head
    assert not any("head" in k for k in saved_keys(out))  # evaluated and saved without it
    assert trained_folder_round_trip(out) < 1e-5
