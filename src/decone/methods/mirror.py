"""Mirror-BERT, sentence level: self-duplication, a random character span masked in one view, dropout, T = 0.04."""

from decone import augment
from decone.errors import ConfigError
from decone.methods import Method, register
from decone.objectives import InfoNCE


def _views(config, tokenizer) -> augment.ViewFn:
    """The plain view and the span-masked one; the mask is the tokenizer's own mask token, which a decoder's lacks."""
    if config.mask_span and tokenizer.mask_token is None:  # --mask-span 0: dropout alone, no mask needed
        raise ConfigError("mirror: the tokenizer has no mask token to mask a span with (a decoder?); use simcse, "
                          "or llm2vec-simcse for decoders")
    return augment.span_masked_views(config.mask_span, tokenizer.mask_token)


register(Method(
    name="mirror",
    summary="Mirror-BERT (sentences): self-duplication, a random 5-character span masked in one view, dropout.",
    citation="Liu, Vulic, Korhonen and Collier 2021, Fast, Effective, and Self-Supervised: Mirror-BERT (EMNLP), "
             "arXiv:2104.08027",
    data="sentences",
    views=_views,
    objective=lambda config: InfoNCE(config.temperature),
    defaults=dict(pooling="cls_before_pooler", head="none", temperature=0.04, lr=2e-5, batch_size=200,
                  max_length=50, epochs=1, mask_span=5),
))
