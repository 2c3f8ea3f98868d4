"""Mirror-BERT, sentence level: self-duplication, a random character span masked in one view, dropout, NT-Xent
over both views at T = 0.04 (Liu, Vulic, Korhonen and Collier 2021, arXiv:2104.08027).

As the authors' code (cambridgeltl/mirror-bert): the loss is pytorch-metric-learning's ``NTXentLoss`` over the 2B
embeddings of both views, so every sentence of either view is an anchor with 2B - 2 negatives
(:func:`decone.objectives.nt_xent`); the span of 5 characters is masked only in sentences of at least 30 characters
(shorter ones differ by dropout alone). Pooling differs: the authors' BERT sentence script trains with a mean over
every position, padding included; decone pools [CLS] before the pooler by default (``--pooling mean`` averages the
real tokens only).
"""

from decone import augment
from decone.errors import ConfigError
from decone.methods import Method, register
from decone.objectives import NTXent

MIN_MASKED_CHARS = 30  # the authors' erase_and_mask leaves shorter sentences whole


def _views(config, tokenizer) -> augment.ViewFn:
    """The plain view and the span-masked one; the mask is the tokenizer's own mask token, which a decoder's lacks."""
    if config.mask_span and tokenizer.mask_token is None:  # --mask-span 0: dropout alone, no mask needed
        raise ConfigError("mirror: the tokenizer has no mask token to mask a span with (a decoder?); use simcse, "
                          "or llm2vec-simcse for decoders")
    return augment.span_masked_views(config.mask_span, tokenizer.mask_token, MIN_MASKED_CHARS)


register(Method(
    name="mirror",
    summary="Mirror-BERT (sentences): self-duplication, a random 5-character span masked in one view, dropout.",
    citation="Liu, Vulic, Korhonen and Collier 2021, Fast, Effective, and Self-Supervised: Mirror-BERT (EMNLP), "
             "arXiv:2104.08027",
    data="sentences",
    views=_views,
    objective=lambda config: NTXent(config.temperature),
    defaults=dict(pooling="cls_before_pooler", head="none", temperature=0.04, lr=2e-5, batch_size=200,
                  max_length=50, epochs=1, mask_span=5),
    revision=2,  # 2: NT-Xent over both views (was one-directional InfoNCE); short sentences left unmasked
))
