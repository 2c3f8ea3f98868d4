"""Supervised contrastive fine-tuning of a classifier: (1 - lambda) CE + lambda SupCon over [CLS], lambda 0.9, T 0.3
(Gunel et al. 2021, arXiv:2011.01403).

Both terms are means over the batch's examples (SupCon over the anchors that have a positive, as Khosla et al.'s
reference code). The paper's Eq. 3 writes the SupCon term as a sum over anchors beside a mean cross-entropy, which
would weigh it by the batch size on top of lambda; the paper publishes no code, and we keep both terms per example so
that lambda alone sets their balance.
"""

from dataclasses import dataclass

from decone import augment
from decone.classify.scl import DEFAULT_LAMBDA, DEFAULT_TEMPERATURE, SCLClassifierLoss, check_head_init, method_sampler
from decone.methods import Method, register


@dataclass
class SCLOptions:
    """``head_init``: "probe" starts the linear head from a logistic regression on the frozen features (linear
    probing, then fine-tuning: Kumar et al. 2022, arXiv:2202.10054); "random" is the paper's random head."""

    head_init: str = "probe"

    def validate(self) -> None:
        check_head_init(self.head_init, "--set head_init")


register(Method(
    name="scl",
    summary="Classifier fine-tuning: (1 - lambda) cross-entropy of a linear head + lambda SupCon over [CLS] (--lambda 0.9).",
    citation="Gunel, Du, Conneau and Stoyanov 2021, Supervised Contrastive Learning for Pre-trained Language Model "
             "Fine-tuning (ICLR), arXiv:2011.01403",
    data="labelled",
    views=lambda config, tokenizer: augment.column_views(1),
    objective=lambda config: SCLClassifierLoss(config.scl_lambda, config.temperature,
                                               head_init=config.method_options.head_init),
    defaults=dict(pooling="cls_before_pooler", head="none", temperature=DEFAULT_TEMPERATURE, lr=2e-5, batch_size=16, max_length=64,
                  epochs=3, scl_lambda=DEFAULT_LAMBDA),
    sampler=method_sampler,
    options=SCLOptions,
))
