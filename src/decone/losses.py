"""Contrastive losses that work on embeddings only (no model inside).

Similarity lives in :func:`cosine_similarity_matrix`; each loss is a small module whose maths is in
``compute_loss_from_embeddings`` and whose ``forward`` takes the list of view embeddings a method produces.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from decone.errors import ConfigError


def cosine_similarity_matrix(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise cosine similarities. a (N, d), b (M, d) -> (N, M)."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def _check_temperature(temperature: float) -> float:
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    return float(temperature)


class InfoNCE(nn.Module):
    """InfoNCE / NT-Xent over in-batch negatives (van den Oord et al. 2018; Chen et al. 2020; Gao et al. 2021).

    For anchor i with positive i, the loss is the cross-entropy of ``cos(a_i, c_j) / temperature`` over all
    candidates c = [positives; hard negatives], target j = i:

        l_i = -log exp(s(a_i, p_i)/T) / (sum_j exp(s(a_i, p_j)/T) + sum_j exp(s(a_i, h_j)/T + w·[j = i]))

    ``hard_negative_weight`` w is added on the log scale to each anchor's own hard negative (SimCSE's supervised
    setting, Gao et al. 2021, Appendix; 0 by default). ``symmetric`` averages the anchor->positive and the
    positive->anchor directions (the latter over anchors only).

    ``offset`` supports global negatives across processes: anchors are the local rows ``offset .. offset+N`` of
    the gathered candidates.
    """

    def __init__(self, temperature: float = 0.05, hard_negative_weight: float = 0.0, symmetric: bool = False):
        super().__init__()
        self.temperature = _check_temperature(temperature)
        self.hard_negative_weight = float(hard_negative_weight)
        self.symmetric = symmetric

    def compute_loss_from_embeddings(
        self, anchors: Tensor, positives: Tensor, hard_negatives: Tensor | None = None, offset: int = 0
    ) -> Tensor:
        """anchors (N, d); positives (M, d) with M >= offset + N; hard_negatives (M, d) or None -> scalar."""
        n, m = anchors.shape[0], positives.shape[0]
        targets = torch.arange(offset, offset + n, device=anchors.device)
        candidates = positives if hard_negatives is None else torch.cat([positives, hard_negatives], dim=0)
        logits = cosine_similarity_matrix(anchors, candidates) / self.temperature  # (N, M) or (N, 2M)
        if hard_negatives is not None and self.hard_negative_weight != 0.0:
            bonus = torch.zeros_like(logits)
            bonus[torch.arange(n), m + targets] = self.hard_negative_weight
            logits = logits + bonus
        loss = F.cross_entropy(logits, targets)
        if self.symmetric:
            # positive -> anchor: candidates are the anchors (local rows only when distributed)
            back = cosine_similarity_matrix(positives[offset : offset + n], anchors) / self.temperature  # (N, N)
            loss = (loss + F.cross_entropy(back, torch.arange(n, device=anchors.device))) / 2
        return loss

    def forward(self, views: list[Tensor], labels: Tensor | None = None, offset: int = 0) -> Tensor:
        """views: [anchors, positives] or [anchors, positives, hard_negatives], each (N, d)."""
        return self.compute_loss_from_embeddings(*views[:3], offset=offset) if len(views) == 3 else \
            self.compute_loss_from_embeddings(views[0], views[1], offset=offset)


class SupCon(nn.Module):
    """Supervised contrastive loss (Khosla et al. 2020, L_out; used for fine-tuning by Gunel et al. 2021).

    On L2-normalised features z, for anchor i with positives P(i) = {p != i : y_p = y_i} and A(i) = {a != i}:

        l_i = -1/|P(i)| * sum_{p in P(i)} log( exp(z_i·z_p / T) / sum_{a in A(i)} exp(z_i·z_a / T) )

    The loss is the mean of l_i over anchors that have at least one positive; anchors with none are left out (their
    term is undefined). A batch where no anchor has a positive gives 0 (still connected to the graph).
    """

    def __init__(self, temperature: float = 0.3):
        super().__init__()
        self.temperature = _check_temperature(temperature)

    def compute_loss_from_embeddings(self, features: Tensor, labels: Tensor) -> Tensor:
        """features (N, d), labels (N,) -> scalar."""
        n = features.shape[0]
        logits = cosine_similarity_matrix(features, features) / self.temperature  # (N, N)
        self_mask = torch.eye(n, dtype=torch.bool, device=features.device)
        logits = logits.masked_fill(self_mask, float("-inf"))  # A(i) excludes i
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)  # (N, N)
        positives = (labels[:, None] == labels[None, :]) & ~self_mask  # (N, N)
        n_pos = positives.sum(dim=1)  # (N,)
        has_pos = n_pos > 0
        if not has_pos.any():
            return features.sum() * 0.0
        pos_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)  # (N,)
        return -(pos_log_prob[has_pos] / n_pos[has_pos]).mean()

    def forward(self, views: list[Tensor], labels: Tensor, offset: int = 0) -> Tensor:
        return self.compute_loss_from_embeddings(views[0], labels)
