"""BERT-whitening (Su et al. 2021, *Whitening Sentence Representations for Better Semantics and Faster Retrieval*).

Fit on sentence embeddings X (n, d): the mean mu and the covariance Sigma = U diag(s) U^T (SVD); W = U diag(1/sqrt(s)),
keeping the first k columns (the top-k principal directions) for dimensionality reduction. A sentence vector x becomes
(x - mu) W, whose covariance on the fitting data is the identity.

The transform is stored in the encoder as a :class:`decone.encoder.Dense` layer with identity activation, weight W^T
(k, d) and bias -mu W, appended after the encoder's existing dense layers and before its normalisation. It is saved as
a sentence-transformers ``Dense`` module, so ``decone.Encoder.load(path)`` and
``sentence_transformers.SentenceTransformer(path)`` both reapply it (the latter for every pooling but
``first_last_avg``, which sentence-transformers cannot express).
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import torch

from decone.errors import ConfigError, DataError, check_device, check_output_dir

#: Eigenvalues below this fraction of the largest count as zero (a direction with no variance cannot be whitened).
RANK_TOL = 1e-10


def fit_whitening(x, dim: int | None = None, source: str = "the data") -> tuple[np.ndarray, np.ndarray]:
    """Fit BERT-whitening on embeddings ``x`` (n, d).

    Args:
        x: sentence embeddings, one per row.
        dim: keep the first ``dim`` columns of W. Default: every direction with non-zero variance, i.e. the
            covariance's numerical rank (eigenvalues above RANK_TOL x the largest). Post-LayerNorm models pooled with
            ``mean``/``cls`` have exactly one zero-variance direction (LayerNorm's zero-mean constraint survives
            averaging), so this is usually d - 1; whitening that direction would only amplify rounding noise.
        source: named in error messages.

    Returns:
        (mu (d,), W (d, dim)), float64. ``(x - mu) @ W`` has identity covariance (ddof=1) on ``x``.

    Raises:
        DataError: fewer than 2 rows, or the covariance has fewer than ``dim`` non-zero eigenvalues (too few or too
            alike sentences for that many dimensions).
        ConfigError: ``dim`` out of range.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"fit_whitening: expected (n, d), got shape {x.shape}")
    n, d = x.shape
    if dim is not None and not 1 <= dim <= d:
        raise ConfigError(f"--dim must be between 1 and the embedding size {d}, got {dim}")
    if n < 2:
        raise DataError(f"{source}: whitening needs at least 2 sentences, got {n}")
    if not np.isfinite(x).all():
        raise DataError(f"{source}: embeddings contain NaN or infinite values")
    mu = x.mean(axis=0)
    s, u = _eigh_desc(covariance(x))  # cov = U diag(s) U^T: for a symmetric PSD matrix the SVD is the eigendecomposition
    rank = int((s > s[0] * RANK_TOL).sum()) if s[0] > 0 else 0
    if rank == 0:
        raise DataError(f"{source}: all {n} sentences have the same embedding: nothing to whiten")
    if dim is None:
        dim = rank
    elif rank < dim:
        raise DataError(
            f"{source}: {n} sentences give embeddings whose covariance has rank {rank} < {dim}: "
            f"pass --dim {rank} or less" + (f", or use more than {dim} sentences" if n <= dim else "")
        )
    w = u[:, :dim] / np.sqrt(s[:dim])
    return mu, w


def apply_whitening(x, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(x - mu) @ W. x: (n, d) -> (n, k)."""
    return (np.asarray(x, dtype=np.float64) - mu) @ w


def whitening_layer(mu: np.ndarray, w: np.ndarray):
    """A :class:`decone.encoder.Dense` (identity) computing (x - mu) W: weight W^T (k, d), bias -mu W (k,)."""
    from decone.encoder import Dense

    d, k = w.shape
    layer = Dense(d, k, activation="identity", bias=True)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.as_tensor(w.T, dtype=torch.float32))
        layer.linear.bias.copy_(torch.as_tensor(-(mu @ w), dtype=torch.float32))
    return layer


def unwhitened_embeddings(encoder, sentences: Sequence[str], batch_size: int = 64,
                          show_progress: bool | None = None) -> np.ndarray:
    """The embeddings the whitening layer will see: the encoder's output before its normalisation (if any)."""
    normalize = encoder.normalize
    encoder.normalize = False
    try:
        return encoder.encode(list(sentences), batch_size=batch_size, show_progress=show_progress)
    finally:
        encoder.normalize = normalize


def whiten_encoder(encoder, sentences: Sequence[str], dim: int | None = None, batch_size: int = 64,
                   show_progress: bool | None = None, source: str = "the data") -> dict:
    """Fit whitening on ``sentences`` and append it to ``encoder.dense`` (in place, on the encoder's device).

    Returns:
        a summary: ``dim_in``, ``dim``, ``n_sentences``, ``explained_variance`` (share of the fitting data's variance
        in the kept directions).
    """
    x = unwhitened_embeddings(encoder, sentences, batch_size, show_progress)
    mu, w = fit_whitening(x, dim, source)
    layer = whitening_layer(mu, w).to(encoder.device)
    encoder.dense.append(layer)
    var = _eigh_desc(covariance(x))[0]
    return {
        "dim_in": int(x.shape[1]),
        "dim": int(w.shape[1]),
        "n_sentences": int(x.shape[0]),
        "explained_variance": float(var[: w.shape[1]].sum() / var.sum()) if var.sum() > 0 else 1.0,
    }


def read_fit_sentences(path: str | os.PathLike) -> list[str]:
    """Sentences to fit on: one a line (.txt), or both sentences of every pair of an STS-B .csv or folder."""
    from decone.diagnostics.data import load_data

    return load_data(path).sentences


def whiten(
    model: str,
    data: str | os.PathLike,
    output: str | os.PathLike,
    dim: int | None = None,
    pooling: str | None = None,
    batch_size: int = 64,
    device: str | None = None,
    show_progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> dict:
    """Load ``model``, fit whitening on the sentences of ``data``, save the whitened encoder to ``output``.

    ``output`` must be new or an empty folder unless ``overwrite``; nothing is written where fitting fails.

    Returns:
        the summary written to ``decone.json`` under ``whitening``, plus ``warnings`` from saving.
    """
    from decone.encoder import Encoder

    say = log or (lambda _msg: None)
    if dim is not None and dim < 1:
        raise ConfigError(f"--dim must be at least 1, got {dim}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    check_device(device)
    check_output_dir(output, overwrite=overwrite)
    sentences = read_fit_sentences(data)
    say(f"loading {model}")
    encoder = Encoder.load(model, pooling=pooling, device=device)
    say(f"encoding {len(sentences):,} sentences from {data}")
    info = whiten_encoder(encoder, sentences, dim, batch_size, show_progress, source=str(data))
    info.update(model=str(model), data=str(data), pooling=encoder.pooling, method="BERT-whitening (Su et al. 2021)")
    old_meta = {k: v for k, v in (getattr(encoder, "meta", {}) or {}).items()
                if k not in ("decone_version", "pooling", "max_length", "normalize", "dense",
                             "sentence_transformers_compatible")}
    warnings = encoder.save(output, meta={**old_meta, "method": "whitening", "whitening": info})
    say(f"saved the whitened encoder ({info['dim_in']} -> {info['dim']} dims, "
        f"{info['explained_variance']:.1%} of the variance kept) to {output}")
    return {**info, "warnings": list(warnings)}


def _eigh_desc(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, clipped at 0) and eigenvectors (columns) of a symmetric matrix, single-threaded."""
    from decone.diagnostics.metrics import eigh

    s, u = eigh(a)
    return np.clip(s[::-1], 0.0, None), u[:, ::-1]


def covariance(x) -> np.ndarray:
    """Sample covariance (ddof=1) of the rows of x, (d, d); a helper for checks."""
    x = np.asarray(x, dtype=np.float64)
    return np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


__all__ = ["fit_whitening", "apply_whitening", "whitening_layer", "unwhitened_embeddings", "whiten_encoder", "whiten",
           "read_fit_sentences", "covariance", "RANK_TOL"]
