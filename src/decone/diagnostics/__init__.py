"""Anisotropy diagnostics: pure metrics of embedding matrices, plus a small layer that collects them from an Encoder.

Sentence level (:mod:`decone.diagnostics.metrics`, (n, d) matrices)::

    avg_cosine(x, n_pairs=10000, seed=0)        isoscore(x)               partition_isotropy(x, normalize=False)
    variance_shares(x, ks=(1, 5, 10))           effective_rank(x)         norm_stats(x)
    alignment(x, y, alpha=2)                    uniformity(x, t=2)        sentence_metrics(x, n_pairs, seed)

Token level (:mod:`decone.diagnostics.tokens`): ``token_metrics(WordStates, ...)`` per layer: baseline, self- and
intra-sentence similarity, raw and adjusted, function vs content words.

Collecting (:mod:`decone.diagnostics.collect`): ``sentence_embeddings``, ``layer_embeddings``, ``word_states``.
Reports and plots: :func:`decone.diagnostics.report.diagnose`; training dynamics:
:class:`decone.diagnostics.dynamics.DynamicsCallback`, :func:`decone.diagnostics.dynamics.plot_dynamics`.
"""

from decone.diagnostics.metrics import (
    alignment,
    alignment_uniformity,
    avg_cosine,
    effective_rank,
    isoscore,
    norm_stats,
    pair_cosines,
    partition_isotropy,
    pca_variances,
    sentence_metrics,
    singular_values,
    uniformity,
    variance_shares,
)
from decone.diagnostics.tokens import FUNCTION_WORDS, WordStates, token_metrics

__all__ = [
    "alignment", "alignment_uniformity", "avg_cosine", "effective_rank", "isoscore", "norm_stats", "pair_cosines",
    "partition_isotropy", "pca_variances", "sentence_metrics", "singular_values", "uniformity", "variance_shares",
    "FUNCTION_WORDS", "WordStates", "token_metrics",
]
