"""Shared pieces of the method tests: a tiny corpus, one objective set up on a tiny BERT, one optimizer step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from decone.data import Dataset
from decone.methods import get_method
from decone.train import TrainConfig, Trainable

SENTS = [f"the {a} {b} the {c} in the city" for a, b, c in
         zip(["cat", "dog", "man", "woman", "child", "teacher", "student", "car"] * 2,
             ["sat on", "ran to", "read", "saw", "played with", "liked", "wrote", "hit"] * 2,
             ["mat", "road", "book", "tree", "song", "school", "news", "house", "fire", "water", "music", "market",
              "phone", "movie", "day", "night"])]


def write_corpus(folder: Path) -> Path:
    path = folder / "sents.txt"
    path.write_text("\n".join(SENTS) + "\n")
    return path


def build(method: str, model_dir, **settings) -> tuple[Trainable, TrainConfig]:
    """The method's objective set up on the tiny BERT, as the trainer does (pooling, head, objective, setup)."""
    from decone.encoder import Encoder, MLPHead, Pooling

    cfg = TrainConfig(method=method, model=str(model_dir), batch_size=8, max_length=24, bf16=False, **settings).resolved()
    torch.manual_seed(0)
    enc = Encoder.load(model_dir, device="cpu")
    enc.pooling_module = Pooling(cfg.pooling, cfg.template)
    head = MLPHead(enc.model.config.hidden_size) if cfg.head == "mlp-train" else None
    m = get_method(method)
    model = Trainable(enc, head, m.objective(cfg), max_length=cfg.max_length)
    model.objective.setup(model, Dataset([(s,) for s in SENTS], "mem"))
    return model, cfg


def views(model_cfg, texts=SENTS[:8], seed=0):
    import random

    model, cfg = model_cfg
    return get_method(cfg.method).views(cfg, model.encoder.tokenizer)([(t,) for t in texts], random.Random(seed))


def step(model, optimizer, v) -> float:
    model.objective.prepare(model, v, False)
    loss = model.compute_loss(v, None, False)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    model.objective.after_step(model)
    return float(loss.detach())


def loss_only(model, v) -> float:
    with torch.no_grad():
        model.objective.prepare(model, v, False)
        return float(model.compute_loss(v, None, False))


def trained_folder_round_trip(out: Path) -> float:
    """Max |difference| between decone's and sentence-transformers' embeddings of the saved folder."""
    from sentence_transformers import SentenceTransformer

    from decone.encoder import Encoder

    ours = Encoder.load(out, device="cpu").encode(SENTS, batch_size=4)
    theirs = SentenceTransformer(str(out), device="cpu").encode(SENTS, batch_size=4, convert_to_numpy=True)
    return float(np.abs(ours - theirs).max())


def saved_keys(out: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        return list(f.keys())


def summary(out: Path) -> dict:
    return json.loads((out / "decone.json").read_text())
