"""Supervised SimCSE: (anchor, positive[, hard negative]) rows, InfoNCE with the hard negatives as extra candidates.

Defaults from the paper's supervised BERT-base recipe (arXiv:2104.08821, appendix A): batch 512, lr 5e-5, 3 epochs,
T 0.05, [CLS] with the MLP kept. A batch that does not fit in memory is split by GradCache (``--max-memory``, or
``--mini-batch-size``), which gives the same loss and gradients.
"""

from decone import augment
from decone.methods import Method, register
from decone.objectives import InfoNCE

register(Method(
    name="simcse-sup",
    summary="Supervised SimCSE: (anchor, positive[, hard negative]) rows, e.g. NLI entailment / contradiction.",
    citation="Gao, Yao and Chen 2021, SimCSE: Simple Contrastive Learning of Sentence Embeddings (EMNLP), "
             "arXiv:2104.08821",
    data="triples",
    views=lambda config, tokenizer: augment.column_views(),
    objective=lambda config: InfoNCE(config.temperature, hard_negative_weight=config.hard_negative_weight or 0.0),
    defaults=dict(pooling="cls_before_pooler", head="mlp", temperature=0.05, lr=5e-5, batch_size=512, max_length=32,
                  epochs=3, hard_negative_weight=0.0),
))
