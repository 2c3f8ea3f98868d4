"""Contrastive losses as pure functions of embeddings: the maths every objective calls.

One similarity (:func:`cosine_similarity_matrix`) serves all of them, as pytorch-metric-learning's one shared
distance does.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def cosine_similarity_matrix(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise cosine similarities. a (N, d), b (M, d) -> (N, M)."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def info_nce(anchors: Tensor, positives: Tensor, temperature: float, hard_negatives: Tensor | None = None,
             hard_negative_weight: float = 0.0, symmetric: bool = False, offset: int = 0,
             extra_negatives: Tensor | None = None) -> Tensor:
    """InfoNCE / NT-Xent over in-batch negatives (van den Oord et al. 2018, arXiv:1807.03748; Gao et al. 2021).

    For anchor i (row ``offset + i`` of the candidates) the loss is the cross-entropy of ``cos(a_i, c_j) / T`` over
    the candidates c = [positives; hard negatives; extra negatives], target ``offset + i``:

        l_i = -log exp(s(a_i, p_i)/T) / (sum_j exp(s(a_i, p_j)/T) + sum_j exp(s(a_i, h_j)/T + w [j = i])
                                          + sum_q exp(s(a_i, e_q)/T))

    Args:
        anchors: (N, d).
        positives: (M, d), M >= offset + N (M > N when the candidates were gathered from several processes).
        temperature: T > 0.
        hard_negatives: (M, d) or None; ``hard_negative_weight`` w is added on the log scale to each anchor's own
            hard negative (SimCSE's supervised setting, arXiv:2104.08821, appendix).
        symmetric: also the positive -> anchor direction (over the local anchors), averaged with the first.
        offset: the anchors' first row in the candidates.
        extra_negatives: (Q, d) or None, candidates that are nobody's positive (e.g. ESimCSE's momentum queue).

    Returns:
        scalar, the mean over anchors.
    """
    n, m = anchors.shape[0], positives.shape[0]
    targets = torch.arange(offset, offset + n, device=anchors.device)
    parts = [positives] + ([hard_negatives] if hard_negatives is not None else []) \
        + ([extra_negatives] if extra_negatives is not None else [])
    candidates = torch.cat(parts, dim=0) if len(parts) > 1 else positives
    logits = cosine_similarity_matrix(anchors, candidates) / temperature  # (N, M [+ M] [+ Q])
    if hard_negatives is not None and hard_negative_weight != 0.0:
        bonus = torch.zeros_like(logits)
        bonus[torch.arange(n), m + targets] = hard_negative_weight
        logits = logits + bonus
    loss = F.cross_entropy(logits, targets)
    if symmetric:  # positive -> anchor: the candidates are the (local) anchors
        back = cosine_similarity_matrix(positives[offset: offset + n], anchors) / temperature  # (N, N)
        loss = (loss + F.cross_entropy(back, torch.arange(n, device=anchors.device))) / 2
    return loss


def nt_xent(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """NT-Xent over both views (SimCLR, Chen et al. 2020, arXiv:2002.05709; Mirror-BERT's loss, arXiv:2104.08027).

    The 2N embeddings z = [a; b] are all anchors; z_i's positive is its other view, its candidates every other row
    of z (its own excluded), so each anchor has 2N - 2 negatives, from both views:

        l_i = -log exp(s(z_i, z_pos(i))/T) / sum_{j != i} exp(s(z_i, z_j)/T),   pos(i) = i + N mod 2N

    a (N, d), b (N, d) -> scalar, the mean of l_i over the 2N anchors (as pytorch-metric-learning's ``NTXentLoss``
    with labels [0..N-1, 0..N-1], which the Mirror-BERT code calls).
    """
    n = a.shape[0]
    z = torch.cat([a, b], dim=0)  # (2N, d)
    logits = cosine_similarity_matrix(z, z) / temperature  # (2N, 2N)
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)  # (2N,)
    return F.cross_entropy(logits, targets)


def supcon(features: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, arXiv:2004.11362, L_out).

    On L2-normalised features z, for anchor i with positives P(i) = {p != i : y_p = y_i} and A(i) = {a != i}:

        l_i = -1/|P(i)| * sum_{p in P(i)} log( exp(z_i·z_p / T) / sum_{a in A(i)} exp(z_i·z_a / T) )

    features (N, d), labels (N,) -> scalar: the mean of l_i over anchors with at least one positive (the others'
    term is undefined); 0, still connected to the graph, when no anchor has one.
    """
    n = features.shape[0]
    logits = cosine_similarity_matrix(features, features) / temperature  # (N, N)
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
