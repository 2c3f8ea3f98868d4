"""Unsupervised SimCSE: two dropout views of each sentence, InfoNCE over in-batch negatives, T = 0.05."""

from decone import augment
from decone.methods import Method, register
from decone.objectives import InfoNCE

register(Method(
    name="simcse",
    summary="Unsupervised SimCSE: two dropout views of each sentence, InfoNCE over in-batch negatives.",
    citation="Gao, Yao and Chen 2021, SimCSE: Simple Contrastive Learning of Sentence Embeddings (EMNLP), "
             "arXiv:2104.08821",
    data="sentences",
    views=lambda config, tokenizer: augment.dropout_views(2),
    objective=lambda config: InfoNCE(config.temperature),
    defaults=dict(pooling="cls_before_pooler", head="mlp-train", temperature=0.05, lr=3e-5, batch_size=64,
                  max_length=32, epochs=1),
))
