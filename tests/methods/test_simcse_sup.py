"""Supervised SimCSE: the paper's defaults, the example's columns as views (anchor, positive, hard negative), and
InfoNCE with the hard negatives as extra candidates (the own one weighted) equal to a hand-written reference."""

from __future__ import annotations

import math
import random

import torch
from torch.nn import functional as F

from decone.methods import get_method
from decone.train import TrainConfig, fit
from tests.methods.helpers import build, trained_folder_round_trip


def test_paper_defaults_and_citation():
    m = get_method("simcse-sup")
    assert (m.defaults["temperature"], m.defaults["head"], m.defaults["hard_negative_weight"]) == (0.05, "mlp", 0.0)
    assert (m.defaults["batch_size"], m.defaults["lr"], m.defaults["epochs"]) == (512, 5e-5, 3)  # BERT-base, appendix A
    assert "arXiv:2104.08821" in m.citation and m.data == "triples"


def test_views_are_the_columns(tiny_model_dir):
    model, cfg = build("simcse-sup", tiny_model_dir)
    rows = [("a man plays", "someone plays", "nobody plays"), ("a dog runs", "an animal runs", "the dog sleeps")]
    v = get_method("simcse-sup").views(cfg, model.encoder.tokenizer)(rows, random.Random(0))
    assert v == [["a man plays", "a dog runs"], ["someone plays", "an animal runs"], ["nobody plays", "the dog sleeps"]]


def test_loss_with_hard_negatives_matches_a_hand_written_reference(tiny_model_dir):
    model, _ = build("simcse-sup", tiny_model_dir, hard_negative_weight=0.5)
    a, p, h = torch.randn(4, 32), torch.randn(4, 32), torch.randn(4, 32)
    ref = 0.0
    for i in range(4):  # candidates: every positive, then every hard negative, + w on the anchor's own hard negative
        logits = [float(F.cosine_similarity(a[i], p[j], dim=0)) / 0.05 for j in range(4)]
        logits += [float(F.cosine_similarity(a[i], h[j], dim=0)) / 0.05 + (0.5 if j == i else 0.0) for j in range(4)]
        ref += -(logits[i] - math.log(sum(math.exp(x) for x in logits))) / 4
    assert abs(float(model.objective.loss_from_embeddings([a, p, h])) - ref) < 1e-4
    without = float(model.objective.loss_from_embeddings([a, p]))  # pairs only: in-batch negatives alone
    assert without < float(model.objective.loss_from_embeddings([a, p, h]))


def test_trains_on_triples_and_saves_a_loadable_folder(tiny_model_dir, tmp_path):
    data = tmp_path / "nli.csv"
    rows = ["sent0,sent1,hard_neg"] + [f"the {w} sat,a {w} was sitting,the {w} ran away" for w in
                                       ("cat", "dog", "man", "woman", "child", "bird", "horse", "fish")]
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "sup"
    summary = fit(TrainConfig(method="simcse-sup", model=str(tiny_model_dir), data=str(data), output=str(out),
                              max_steps=2, batch_size=4, bf16=False, lr=1e-3))
    assert summary["steps"] == 2 and math.isfinite(summary["final_loss"])
    assert trained_folder_round_trip(out) < 1e-5
