"""Mirror-BERT, sentence level: self-duplication, a random character span masked in one view, dropout, T = 0.04."""

from decone import augment
from decone.methods import Method, register
from decone.objectives import InfoNCE

register(Method(
    name="mirror",
    summary="Mirror-BERT (sentences): self-duplication, a random 5-character span masked in one view, dropout.",
    citation="Liu, Vulic, Korhonen and Collier 2021, Fast, Effective, and Self-Supervised: Mirror-BERT (EMNLP), "
             "arXiv:2104.08027",
    data="sentences",
    views=lambda config, tokenizer: augment.span_masked_views(config.mask_span, tokenizer.mask_token),
    objective=lambda config: InfoNCE(config.temperature),
    defaults=dict(pooling="cls_before_pooler", head="none", temperature=0.04, lr=2e-5, batch_size=200,
                  max_length=50, epochs=1, mask_span=5),
))
