"""The model a training run optimises: the encoder, a training-only head, and the objective (with its own modules)."""

from __future__ import annotations

import torch
from torch import nn

from decone.encoder import Encoder
from decone.objectives import Objective


class Trainable(nn.Module):
    """The encoder (saved), the training head (not saved, or None) and the objective (whose modules the run owns).

    ``state_dict`` of this module is what a checkpoint holds; ``encoder`` alone is what the model folder holds.
    """

    def __init__(self, encoder: Encoder, head: nn.Module | None, objective: Objective, max_length: int | None = None):
        super().__init__()
        self.max_length = max_length  # training truncation; the saved encoder keeps its own inference length
        self.encoder = encoder
        self.head = head
        self.objective = objective
        self.dist = None  # a decone.distributed.DistContext when training on several processes

    def tokenize_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text at the training length, unpadded."""
        return self.encoder.tokenize_ids(texts, self.max_length).input_ids

    def embed_ids(self, ids: list[list[int]], use_bf16: bool) -> torch.Tensor:
        """Token ids of N texts -> (N, d) fp32 embeddings after the training head (padded to the longest of the N)."""
        feats = {k: v.to(self.encoder.device) for k, v in self.encoder.collate(ids).items()}
        with torch.autocast(device_type=self.encoder.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            z = self.encoder(feats)["embedding"]
            if self.head is not None:
                z = self.head(z)
        return z.float()

    def embed(self, texts: list[str], use_bf16: bool) -> torch.Tensor:
        """texts (N,) -> (N, d) fp32 embeddings after the training head."""
        return self.embed_ids(self.tokenize_ids(texts), use_bf16)

    def loss_from_views(self, views: list[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        """The objective on K (B, d) views; with several processes, against the views gathered from all of them."""
        if self.dist is not None:
            return self.dist.loss(self.objective, views, labels)
        return self.objective.loss_from_embeddings(views, labels)

    def compute_loss(self, views: list[list[str]], labels: torch.Tensor | None, use_bf16: bool) -> torch.Tensor:
        """K views of B texts -> the objective's loss (one forward over K*B texts for embedding objectives)."""
        return self.objective.loss(self, views, labels, use_bf16)
