"""Mirror-BERT, word level: self-duplication of frequent words with dropout, NT-Xent over both views at T = 0.2
(Liu, Vulic, Korhonen and Collier 2021, arXiv:2104.08027; the loss as in :mod:`decone.methods.mirror`)."""

from decone import augment
from decone.methods import Method, register
from decone.objectives import NTXent

register(Method(
    name="mirror-word",
    summary="Mirror-BERT (words): self-duplication of frequent words with dropout; default data: wordfreq top 10k.",
    citation="Liu, Vulic, Korhonen and Collier 2021, Fast, Effective, and Self-Supervised: Mirror-BERT (EMNLP), "
             "arXiv:2104.08027",
    data="words",
    views=lambda config, tokenizer: augment.dropout_views(2),
    objective=lambda config: NTXent(config.temperature),
    defaults=dict(pooling="cls_before_pooler", head="none", temperature=0.2, lr=2e-5, batch_size=200,
                  max_length=25, epochs=2),
    revision=2,  # 2: NT-Xent over both views (was one-directional InfoNCE)
))
