"""Contrastive Tension with in-batch negatives: two towers with separate weights, both trained, one saved
(Carlsson, Gyllensten, Gogoulou, Hellqvist and Sahlgren 2021, ICLR, openreview Ov_sMNau-PF; the in-batch variant of
sentence-transformers' ``ContrastiveTensionLossInBatchNegatives``).

Each sentence goes through both towers (initialised equal, trained apart); the score of sentences i and j is
``cos(z1_i, z2_j) * exp(s)`` with a learned log scale ``s`` (initially log 20, i.e. temperature 0.05), and the loss is
the cross-entropy of the matching pairs in both directions. Defaults: sentence-transformers' CT in-batch example
(mean pooling, lr 5e-5, batch 64, max length 32, scale 20). ``--set tower=2`` saves the second tower instead of the
first (the trained starting encoder).

Several processes: the towers' embeddings are gathered and every rank computes the whole-batch loss (exact).
GradCache is refused: it caches and replays one encoder's embeddings, and CT has two.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from decone import augment
from decone.errors import ConfigError
from decone.methods import Method, register
from decone.objectives import Objective, check_temperature, cosine_similarity_matrix


@dataclass
class CTOptions:
    tower: int = 1  # which tower the model folder holds: 1, the starting encoder trained; 2, its trained copy

    def validate(self) -> None:
        if self.tower not in (1, 2):
            raise ConfigError(f"--set tower must be 1 or 2, got {self.tower}")


class ContrastiveTension(Objective):
    """Symmetric in-batch cross-entropy between two towers' embeddings of the same sentences."""

    gradcache_refusal = "Contrastive Tension trains two encoders; GradCache caches the embeddings of one"
    lora_refusal = "its second tower is a whole trainable copy of the encoder, so LoRA would save nothing"

    def __init__(self, temperature: float, tower: int = 1):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / check_temperature(temperature))))
        self.tower = tower

    def setup(self, model, data) -> None:
        """The second tower: a trainable copy of the encoder (and of the training head, if any)."""
        self.second = copy.deepcopy(model.encoder)
        self.second_head = copy.deepcopy(model.head)

    def loss(self, model, views: list[list[str]], labels: Tensor | None, use_bf16: bool) -> Tensor:
        texts = views[0]
        ids = model.tokenize_ids(texts)
        z1 = model.embed_ids(ids, use_bf16)  # (B, d) the first tower: the encoder
        feats = {k: v.to(model.encoder.device) for k, v in model.encoder.collate(ids).items()}
        with torch.autocast(device_type=model.encoder.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            z2 = self.second(feats)["embedding"]
            z2 = self.second_head(z2) if self.second_head is not None else z2
        return model.loss_from_views([z1, z2.float()], labels)

    def loss_from_embeddings(self, views: list[Tensor], labels: Tensor | None = None, offset: int = 0) -> Tensor:
        """views [first tower (B, d), second tower (B, d)] -> scalar."""
        scores = cosine_similarity_matrix(views[0], views[1]) * self.logit_scale.exp()  # (B, B)
        targets = torch.arange(scores.shape[0], device=scores.device)
        return (F.cross_entropy(scores, targets) + F.cross_entropy(scores.T, targets)) / 2

    def encoder_to_save(self, model):
        return model.encoder if self.tower == 1 else self.second


register(Method(
    name="ct",
    summary="Contrastive Tension (in-batch negatives): two towers of the same start, both trained; one is saved.",
    citation="Carlsson, Gyllensten, Gogoulou, Hellqvist and Sahlgren 2021, Semantic Re-tuning with Contrastive "
             "Tension (ICLR), openreview:Ov_sMNau-PF",
    data="sentences",
    views=lambda config, tokenizer: augment.dropout_views(1),
    objective=lambda config: ContrastiveTension(config.temperature, config.method_options.tower),
    defaults=dict(pooling="mean", head="none", temperature=0.05, lr=5e-5, batch_size=64, max_length=32, epochs=1),
    options=CTOptions,
))
