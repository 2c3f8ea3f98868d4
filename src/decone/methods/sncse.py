"""SNCSE: unsupervised SimCSE plus a negated copy of each sentence as a *soft* negative, kept at a margin by the
bidirectional margin loss (BML).

For anchor a_i, its dropout positive p_i and its soft negative n_i (the sentence negated by
:func:`decone.negation.negate`):

    L = InfoNCE(a, p; T) + lambda * mean_i BML_i,
    BML_i = ReLU(delta_i + alpha) + ReLU(-delta_i - beta),   delta_i = cos(a_i, n_i) - cos(a_i, p_i)

BML is zero while the soft negative is less similar to the anchor than the positive by between alpha and beta
(delta in [-beta, -alpha]): a negated sentence shares most of its words and should stay fairly close, but not as close
as the sentence itself. The soft negatives are NOT negatives of the InfoNCE term (the paper's finding: treating them
as hard negatives hurts).

Defaults and where they come from (Wang et al. 2022, arXiv:2201.05979, and its code, github.com/Sense-GVT/SNCSE):

* alpha 0.1, beta 0.3, lambda 1e-3 (BERT; the code uses 5e-4 for RoBERTa): ``train_SNCSE.py``;
* T 0.05, batch 256, lr 1e-5, max length 32, 1 epoch (BERT-base): ``train_SNCSE.sh``;
* the MLP head in training only (``--pooler_type cls --mlp_only_train``): ``head="mlp-train"``.

Difference from the paper: SNCSE represents a sentence by the [MASK] state of PromptBERT templates, with a different
template for the anchor (``This sentence : "[X]" means [MASK] .``) and for the positive and the soft negative
(``This sentence of "[X]" means [MASK] .``). Here the contrastive part runs on the normal pooled representation
(default ``pooling="cls_before_pooler"``, the same template-free [CLS] for all three views; the views differ by
dropout, as in SimCSE). ``--pooling mask`` gives a single-template prompt representation instead. The negation is
decone's rule-based :mod:`decone.negation` instead of the paper's spaCy-parse rules (same plan: remove an existing
``not``, else add ``not`` after the first auxiliary, else a sentence-level negation).

The objective is a function of the three views' embeddings only, so it runs unchanged under GradCache and on several
processes (the whole gathered batch: InfoNCE over all anchors, BML per row).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from decone.errors import ConfigError
from decone.methods import Method, register
from decone.negation import negate
from decone.objectives import Objective, check_temperature, info_nce


@dataclass
class SNCSEOptions:
    """SNCSE's own settings (``--set NAME=VALUE``); paper values as defaults."""

    bml_weight: float = 1e-3  # lambda: weight of the bidirectional margin loss (BERT; 5e-4 for RoBERTa)
    bml_alpha: float = 0.1  # the soft negative at least alpha less similar to the anchor than the positive
    bml_beta: float = 0.3  # ... and at most beta less similar

    def validate(self) -> None:
        if self.bml_weight < 0:
            raise ConfigError(f"--set bml_weight must be >= 0, got {self.bml_weight}")
        if not self.bml_alpha <= self.bml_beta:
            raise ConfigError(f"--set bml_alpha ({self.bml_alpha}) must be <= bml_beta ({self.bml_beta}): "
                              "the margin band from alpha to beta would be empty")


def bidirectional_margin_loss(anchors: Tensor, positives: Tensor, soft_negatives: Tensor, alpha: float,
                              beta: float) -> Tensor:
    """SNCSE's BML: mean over rows of ReLU(delta + alpha) + ReLU(-delta - beta), delta = cos(a, n) - cos(a, p).

    anchors, positives, soft_negatives: (N, d) -> scalar; zero for rows with delta in [-beta, -alpha].
    """
    delta = F.cosine_similarity(anchors, soft_negatives, dim=-1) - F.cosine_similarity(anchors, positives, dim=-1)
    return (torch.relu(delta + alpha) + torch.relu(-delta - beta)).mean()


class SNCSE(Objective):
    """InfoNCE on views [anchors, positives] + lambda * BML with view 3, the soft negatives (module docstring)."""

    def __init__(self, temperature: float = 0.05, bml_weight: float = 1e-3, alpha: float = 0.1, beta: float = 0.3):
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.bml_weight, self.alpha, self.beta = float(bml_weight), float(alpha), float(beta)
        self._last: dict = {}

    def loss_from_embeddings(self, views: list[Tensor], labels: Tensor | None = None, offset: int = 0) -> Tensor:
        """views: [anchors, positives, soft negatives], each (N, d)."""
        anchors, positives, soft_negatives = views[:3]
        contrastive = info_nce(anchors, positives, self.temperature)
        margin = bidirectional_margin_loss(anchors, positives, soft_negatives, self.alpha, self.beta)
        self._last = {"infonce": contrastive.detach(), "bml": margin.detach()}
        return contrastive + self.bml_weight * margin

    def after_step(self, model) -> dict | None:
        return {k: round(float(v), 6) for k, v in self._last.items()} or None


def soft_negative_views():
    """[text, text, negate(text)]: two dropout views and the negated sentence."""

    def views(batch, rng):
        texts = [row[0] for row in batch]
        return [list(texts), list(texts), [negate(t) for t in texts]]

    return views


def _objective(config) -> SNCSE:
    opts = getattr(config, "method_options", None) or SNCSEOptions()
    return SNCSE(config.temperature, opts.bml_weight, opts.bml_alpha, opts.bml_beta)


register(Method(
    name="sncse",
    summary="SNCSE: SimCSE + the negated sentence as a soft negative held at a margin (bidirectional margin loss).",
    citation="Wang, Li, Huang, Dou, Kong and Shao 2022, SNCSE: Contrastive Learning for Unsupervised Sentence "
             "Embedding with Soft Negative Samples, arXiv:2201.05979",
    data="sentences",
    views=lambda config, tokenizer: soft_negative_views(),
    objective=_objective,
    defaults=dict(pooling="cls_before_pooler", head="mlp-train", temperature=0.05, lr=1e-5, batch_size=256,
                  max_length=32, epochs=1),
    options=SNCSEOptions,
))
