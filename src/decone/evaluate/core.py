"""Shared pieces of the evaluators: encoding unique texts once, cosine of pairs, correlations x100.

An evaluator takes any object with ``.encode(list[str], batch_size=...) -> np.ndarray`` (a decone
:class:`~decone.encoder.Encoder`, a ``SentenceTransformer``, a stub in a test). A decone Encoder also gets ``bf16``
and ``show_progress``.
"""

from __future__ import annotations

import inspect
import time
from typing import Iterable, Sequence

import numpy as np


def encode(encoder, texts: Sequence[str], batch_size: int = 64, bf16: bool | None = False) -> np.ndarray:
    """Embed ``texts`` with ``encoder`` -> float32 (n, d). ``bf16`` is passed where ``encode`` takes it."""
    texts = list(texts)
    kwargs: dict = {"batch_size": batch_size}
    params = _encode_params(encoder)
    if "bf16" in params:
        kwargs["bf16"] = bf16
    if "show_progress" in params:
        kwargs["show_progress"] = None
    elif "show_progress_bar" in params:
        kwargs["show_progress_bar"] = False
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    out = encoder.encode(texts, **kwargs)
    if hasattr(out, "detach"):  # a torch tensor from a foreign encoder
        out = out.detach().float().cpu().numpy()
    out = np.asarray(out, dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != len(texts):
        raise ValueError(f"encode returned shape {out.shape} for {len(texts)} texts; expected (n, d)")
    return out


def encode_unique(encoder, texts: Iterable[str], batch_size: int = 64, bf16: bool | None = False) -> dict[str, np.ndarray]:
    """Embed each distinct text once -> {text: (d,) vector}, rows L2-normalised (zero rows stay zero)."""
    unique = list(dict.fromkeys(texts))
    emb = normalize_rows(encode(encoder, unique, batch_size=batch_size, bf16=bf16))
    return dict(zip(unique, emb))


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; an all-zero row stays zero (its cosine with anything is 0)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def pair_cosines(lookup: dict[str, np.ndarray], pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """Cosine of each (a, b) pair from a {text: unit vector} table -> (n,) float64."""
    if not pairs:
        return np.zeros(0)
    a = np.stack([lookup[p[0]] for p in pairs]).astype(np.float64)
    b = np.stack([lookup[p[1]] for p in pairs]).astype(np.float64)
    return np.einsum("ij,ij->i", a, b)


def spearman100(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation x 100 (NaN where undefined: fewer than 2 points or a constant input)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    from scipy import stats  # here, not at import: scipy.stats is a large import that training rarely needs

    return float(stats.spearmanr(x, y).statistic * 100.0)


def pearson100(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation x 100 (NaN where undefined)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    from scipy import stats

    return float(stats.pearsonr(x, y).statistic * 100.0)


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


class Timer:
    """``with Timer() as t: ...``; then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


def _encode_params(encoder) -> set[str]:
    try:
        return set(inspect.signature(encoder.encode).parameters)
    except (TypeError, ValueError):
        return set()
