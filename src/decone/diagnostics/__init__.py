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

# Lazy (PEP 562): the CLI imports ``decone.diagnostics.command`` at start-up, which must not pull in the metrics.
_TOKENS = ("FUNCTION_WORDS", "WordStates", "token_metrics")


def __getattr__(name):
    if name in __all__:
        import importlib

        module = "tokens" if name in _TOKENS else "metrics"
        return getattr(importlib.import_module(f"decone.diagnostics.{module}"), name)
    raise AttributeError(f"module 'decone.diagnostics' has no attribute {name!r}")


__all__ = [
    "alignment", "alignment_uniformity", "avg_cosine", "effective_rank", "isoscore", "norm_stats", "pair_cosines",
    "partition_isotropy", "pca_variances", "sentence_metrics", "singular_values", "uniformity", "variance_shares",
    "FUNCTION_WORDS", "WordStates", "token_metrics",
]
