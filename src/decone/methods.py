"""The method registry: a method is one entry composing data kind, augmentation, pooling, head, loss and defaults.

Adding a method means adding one :class:`Method` here (and, if it needs them, a view function in ``augment.py`` and a
loss in ``losses.py``). Every default can be overridden from the CLI or :class:`decone.train.TrainConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from decone import augment, losses
from decone.errors import ConfigError

HEADS = ("none", "mlp-train", "mlp")  # no head; SimCSE MLP in training only; MLP kept in the saved model


@dataclass(frozen=True)
class Method:
    """A contrastive method as a composition of parts.

    Attributes:
        name: registry key, the CLI's METHOD argument.
        summary: one line for ``decone train --help`` and the README.
        citation: the paper.
        data: ``sentences``, ``words``, ``triples`` or ``labelled`` (see :func:`decone.data.read_dataset`).
        views: ``views(config, tokenizer) -> ViewFn`` that turns a batch into the views to contrast.
        loss: ``loss(config) -> nn.Module`` taking ``(views: list[(B, d)], labels)``.
        defaults: the paper's hyper-parameters; keys are :class:`~decone.train.TrainConfig` fields.
        sampler: optional ``sampler(dataset, batch_size, seed, epoch) -> list[index array]`` replacing the default
            length-grouped random batches (e.g. to guarantee positives per class for SupCon).
    """

    name: str
    summary: str
    citation: str
    data: str
    views: Callable[[Any, Any], augment.ViewFn]
    loss: Callable[[Any], nn.Module]
    defaults: dict = field(default_factory=dict)
    sampler: Callable[..., list] | None = None


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def _info_nce(config) -> nn.Module:
    return losses.InfoNCE(config.temperature, hard_negative_weight=config.hard_negative_weight or 0.0)


register(Method(
    name="simcse",
    summary="Unsupervised SimCSE: two dropout views of each sentence, InfoNCE over in-batch negatives.",
    citation="Gao, Yao and Chen 2021, SimCSE: Simple Contrastive Learning of Sentence Embeddings (EMNLP)",
    data="sentences",
    views=lambda config, tokenizer: augment.dropout_views(2),
    loss=_info_nce,
    defaults=dict(pooling="cls_before_pooler", head="mlp-train", temperature=0.05, lr=3e-5, batch_size=64,
                  max_length=32, epochs=1),
))

register(Method(
    name="simcse-sup",
    summary="Supervised SimCSE: (anchor, positive[, hard negative]) rows, e.g. NLI entailment / contradiction.",
    citation="Gao, Yao and Chen 2021, SimCSE: Simple Contrastive Learning of Sentence Embeddings (EMNLP)",
    data="triples",
    views=lambda config, tokenizer: augment.column_views(),
    loss=_info_nce,
    defaults=dict(pooling="cls_before_pooler", head="mlp", temperature=0.05, lr=5e-5, batch_size=64, max_length=32,
                  epochs=3, hard_negative_weight=0.0),
))

register(Method(
    name="mirror",
    summary="Mirror-BERT (sentences): self-duplication, a random 5-character span masked in one view, dropout.",
    citation="Liu, Vulic, Korhonen and Collier 2021, Fast, Effective, and Self-Supervised: Mirror-BERT (EMNLP)",
    data="sentences",
    views=lambda config, tokenizer: augment.span_masked_views(config.mask_span, tokenizer.mask_token),
    loss=_info_nce,
    defaults=dict(pooling="cls_before_pooler", head="none", temperature=0.04, lr=2e-5, batch_size=200,
                  max_length=50, epochs=1, mask_span=5),
))

register(Method(
    name="mirror-word",
    summary="Mirror-BERT (words): self-duplication of frequent words with dropout; default data: wordfreq top 10k.",
    citation="Liu, Vulic, Korhonen and Collier 2021, Fast, Effective, and Self-Supervised: Mirror-BERT (EMNLP)",
    data="words",
    views=lambda config, tokenizer: augment.dropout_views(2),
    loss=_info_nce,
    defaults=dict(pooling="cls_before_pooler", head="none", temperature=0.2, lr=2e-5, batch_size=200,
                  max_length=25, epochs=2),
))


def _scl_loss(config) -> nn.Module:
    from decone.classify.scl import SCLClassifierLoss

    return SCLClassifierLoss.from_config(config)


def _scl_sampler(dataset, batch_size: int, seed: int, epoch: int) -> list:
    from decone.classify.scl import method_sampler

    return method_sampler(dataset, batch_size, seed, epoch)


register(Method(
    name="scl",
    summary="Classifier fine-tuning: (1 - lambda) cross-entropy of a linear head + lambda SupCon over [CLS] (--lambda 0.9).",
    citation="Gunel, Du, Conneau and Stoyanov 2021, Supervised Contrastive Learning for Pre-trained Language Model "
             "Fine-tuning (ICLR)",
    data="labelled",
    views=lambda config, tokenizer: augment.column_views(1),
    loss=_scl_loss,
    defaults=dict(pooling="cls_before_pooler", head="none", temperature=0.3, lr=2e-5, batch_size=16, max_length=64,
                  epochs=3, scl_lambda=0.9),
    sampler=_scl_sampler,
))
