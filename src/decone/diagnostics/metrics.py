"""Sentence-level anisotropy metrics: pure functions of an (n, d) embedding matrix, no model needed.

Every function takes a 2-D array (rows = embeddings) and returns plain Python floats (or small numpy arrays for
spectra), computed in float64. Random sampling uses its own ``numpy.random.Generator`` seeded from ``seed``, so results
are reproducible and the global random state (e.g. a training run's) is never touched.

References:

* Ethayarajh (2019), *How Contextual are Contextualized Word Representations?*: average cosine of random pairs as the
  anisotropy baseline.
* Rudman, Gillman, Rayne & Eickhoff (2022), *IsoScore: Measuring the Uniformity of Embedding Space Utilization*.
* Mu & Viswanath (2018), *All-but-the-Top*; Arora et al. (2016): the partition-function isotropy I(W).
* Roy & Vetterli (2007), *The effective rank: a measure of effective dimensionality*.
* Wang & Isola (2020), *Understanding Contrastive Representation Learning through Alignment and Uniformity on the
  Hypersphere*; Gao, Yao & Chen (2021), SimCSE, section 5 (the alignment-uniformity plane).
"""

from __future__ import annotations

import contextlib
import math
from typing import Sequence

import numpy as np

#: Default number of random pairs for :func:`avg_cosine`.
DEFAULT_PAIRS = 10_000


def as_matrix(x, name: str = "embeddings", min_rows: int = 2) -> np.ndarray:
    """``x`` as a finite float64 (n, d) array with at least ``min_rows`` rows; ValueError otherwise."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (n, d) matrix, got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name}: need at least {min_rows} rows, got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name}: zero-dimensional embeddings")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def unit_rows(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, eps)


# ---------------------------------------------------------------------------------------------- cosine of random pairs
def random_pairs(n: int, n_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j), i != j. All n(n-1)/2 unordered pairs when that is at most ``n_pairs`` (exact, no
    sampling), else ``n_pairs`` pairs drawn uniformly with replacement from the ordered pairs i != j."""
    if n < 2:
        raise ValueError(f"need at least 2 rows for pairs, got {n}")
    if n * (n - 1) // 2 <= n_pairs:
        i, j = np.triu_indices(n, k=1)
        return i, j
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=n_pairs)
    j = (i + rng.integers(1, n, size=n_pairs)) % n  # uniform over j != i
    return i, j


def pair_cosines(x, n_pairs: int = DEFAULT_PAIRS, seed: int = 0) -> np.ndarray:
    """Cosine similarities of random pairs of distinct rows (see :func:`random_pairs`). -> (n_pairs,) float64."""
    x = unit_rows(as_matrix(x))
    n = len(x)
    if n * (n - 1) // 2 <= n_pairs:  # every pair: read them off the Gram matrix
        return (x @ x.T)[np.triu_indices(n, k=1)]
    i, j = random_pairs(n, n_pairs, seed)
    return np.einsum("ij,ij->i", x[i], x[j])


def avg_cosine(x, n_pairs: int = DEFAULT_PAIRS, seed: int = 0) -> float:
    """Average cosine similarity of random pairs of distinct rows: Ethayarajh's (2019) anisotropy baseline.

    About 0 for an isotropic cloud centred at the origin, 1 when all rows point the same way. Where all n(n-1)/2
    pairs fit in ``n_pairs`` the mean over every pair is computed exactly, in O(n d):
    (||sum u_i||^2 - sum ||u_i||^2) / (n (n - 1)) for the unit rows u_i.
    """
    u = unit_rows(as_matrix(x))
    n = len(u)
    if n * (n - 1) // 2 <= n_pairs:
        total = u.sum(axis=0)
        return float((total @ total - (u * u).sum()) / (n * (n - 1)))
    return float(pair_cosines(u, n_pairs, seed).mean())


# ---------------------------------------------------------------------------------------------- spectra
def serial_lapack():
    """A context that runs LAPACK single-threaded. OpenBLAS's threaded eigensolvers on these small (d x d) matrices
    slow down by orders of magnitude when the cores are busy (e.g. beside a training run); one thread is fast and
    predictable."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def eigh(a: np.ndarray, eigvals_only: bool = False):
    """Symmetric eigendecomposition (ascending), single-threaded (see :func:`serial_lapack`)."""
    with serial_lapack():
        return np.linalg.eigvalsh(a) if eigvals_only else np.linalg.eigh(a)


def _centered_gram_eigvals(x: np.ndarray, center: bool = True) -> np.ndarray:
    """Eigenvalues of (x - mean)^T (x - mean), descending, clipped at 0: the squared singular values of the centred
    matrix, via the d x d Gram matrix (much faster than an SVD of a tall n x d matrix)."""
    if center:
        x = x - x.mean(axis=0)
    if x.shape[0] < x.shape[1]:  # wide: the n x n Gram matrix has the same non-zero eigenvalues
        ev = eigh(x @ x.T, eigvals_only=True)
        ev = np.concatenate([ev, np.zeros(x.shape[1] - x.shape[0])])
    else:
        ev = eigh(x.T @ x, eigvals_only=True)
    ev = np.sort(ev)[::-1]
    # eigenvalues at rounding level are zero (as numpy.linalg.matrix_rank decides), not tiny positive noise
    ev[ev <= ev[0] * max(x.shape) * 10 * np.finfo(np.float64).eps] = 0.0
    return np.clip(ev, 0.0, None)


def pca_variances(x) -> np.ndarray:
    """Variances along the principal directions (eigenvalues of the sample covariance, ddof=1), descending, (d,).

    With n <= d at most n - 1 of them are non-zero."""
    x = as_matrix(x)
    return _centered_gram_eigvals(x) / (len(x) - 1)


def variance_shares(x, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """Share of the total variance explained by the top-k principal components, for each k (1.0 where k >= d).

    A zero-variance matrix (all rows equal) gives 1.0 for every k.
    """
    return _shares(pca_variances(x), ks)


def _shares(var: np.ndarray, ks: Sequence[int]) -> dict[int, float]:
    total = var.sum()
    if total <= 0:
        return {int(k): 1.0 for k in ks}
    cum = np.cumsum(var) / total
    return {int(k): float(cum[min(int(k), len(cum)) - 1]) for k in ks}


def singular_values(x, center: bool = True) -> np.ndarray:
    """Singular values of the (centred) matrix, descending, (d,) (zeros past rank n)."""
    return np.sqrt(_centered_gram_eigvals(as_matrix(x), center))


def effective_rank(x, center: bool = True) -> float:
    """Effective rank (Roy & Vetterli 2007): exp of the Shannon entropy of the L1-normalised singular values.

    Between 1 and rank(x); equals r for a matrix with r equal non-zero singular values. Computed on the centred
    matrix by default (the spread around the centroid, as PCA sees it); ``center=False`` includes the mean direction.
    A zero matrix gives 0.
    """
    return _erank(singular_values(x, center))


def _erank(s: np.ndarray) -> float:
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return float(math.exp(-(p * np.log(p)).sum()))


# ---------------------------------------------------------------------------------------------- IsoScore
def isoscore(x) -> float:
    """IsoScore (Rudman et al. 2022), in [0, 1]: 1 for an isotropic cloud, 0 when all variance lies on one axis.

    The paper's algorithm, on the d-dimensional point cloud:

    1-2. reorient with PCA (the covariance becomes diagonal);
    3.   take the variance vector Sigma_D (the covariance diagonal = the PCA eigenvalues);
    4.   normalise it to norm sqrt(d): S = sqrt(d) Sigma_D / ||Sigma_D||;
    5.   isotropy defect delta = ||S - 1|| / sqrt(2 (d - sqrt d)), the distance from the isotropic diagonal, in [0, 1];
    6.   fraction of dimensions used phi = (d - delta^2 (d - sqrt d))^2 / d^2;
    7.   IsoScore = (d phi - 1) / (d - 1).

    With fewer points than dimensions at most n - 1 directions carry variance, which caps the score; use n >> d.
    A cloud with no variance at all (every row equal) gets 0.
    """
    return isoscore_from_variances(pca_variances(x))


def isoscore_from_variances(var: np.ndarray) -> float:
    """IsoScore from the PCA variance vector (steps 4-7 of :func:`isoscore`)."""
    var = np.asarray(var, dtype=np.float64)
    d = len(var)
    if d < 2:
        raise ValueError("IsoScore needs at least 2 dimensions")
    norm = np.linalg.norm(var)
    if norm <= 0:
        return 0.0
    normalized = math.sqrt(d) * var / norm
    defect = np.linalg.norm(normalized - 1.0) / math.sqrt(2 * (d - math.sqrt(d)))
    k = (d - defect**2 * (d - math.sqrt(d))) ** 2 / d  # number of dimensions "used"
    score = (k - 1) / (d - 1)
    return float(min(1.0, max(0.0, score)))


# ---------------------------------------------------------------------------------------------- partition function
def partition_isotropy(x, normalize: bool = False) -> float:
    """I(W) = min_c Z(c) / max_c Z(c) with Z(c) = sum_w exp(c . w) (Mu & Viswanath 2018; Arora et al. 2016).

    c ranges over the principal directions: the eigenvectors of W^T W (uncentred, as in the paper) taken with both
    signs (an eigenvector's sign is arbitrary, so both are needed for a well-defined value). In (0, 1]; close to 1
    for an isotropic cloud. Log-sum-exp keeps it finite for large norms.

    Z depends on the vectors' scale: with ``normalize`` the rows are first scaled to unit norm, which makes models
    with different output norms comparable.
    """
    x = as_matrix(x)
    if normalize:
        x = unit_rows(x)
    _, vecs = eigh(x.T @ x)
    proj = x @ vecs  # (n, d): c . w for every principal direction c
    log_z = np.concatenate([_logsumexp_cols(proj), _logsumexp_cols(-proj)])
    return float(math.exp(log_z.min() - log_z.max()))


def _logsumexp_cols(a: np.ndarray) -> np.ndarray:
    top = a.max(axis=0)
    return np.log(np.exp(a - top).sum(axis=0)) + top


# ---------------------------------------------------------------------------------------------- norms
def norm_stats(x) -> dict[str, float]:
    """``mean_norm`` (mean L2 norm of the rows), ``centroid_norm`` (distance of the mean vector from the origin) and
    their ratio ``centroid_ratio`` (scale-free: 0 for a cloud centred at the origin, 1 when all rows are equal)."""
    x = as_matrix(x, min_rows=1)
    mean_norm = float(np.linalg.norm(x, axis=1).mean())
    centroid = float(np.linalg.norm(x.mean(axis=0)))
    return {"mean_norm": mean_norm, "centroid_norm": centroid, "centroid_ratio": centroid / mean_norm if mean_norm > 0 else 0.0}


# ---------------------------------------------------------------------------------------------- alignment / uniformity
def alignment(x, y, alpha: float = 2.0) -> float:
    """Wang & Isola's alignment loss: E ||f(x) - f(y)||^alpha over positive pairs (row i of x with row i of y), on
    L2-normalised vectors. 0 when positives coincide, at most 2^alpha. Lower is better."""
    x = unit_rows(as_matrix(x, "x", min_rows=1))
    y = unit_rows(as_matrix(y, "y", min_rows=1))
    if x.shape != y.shape:
        raise ValueError(f"alignment: x {x.shape} and y {y.shape} differ in shape")
    return float((np.linalg.norm(x - y, axis=1) ** alpha).mean())


def uniformity(x, t: float = 2.0, block: int = 512) -> float:
    """Wang & Isola's uniformity loss: log E exp(-t ||x - y||^2) over all pairs of distinct rows, on L2-normalised
    vectors (as ``torch.pdist(x).pow(2).mul(-t).exp().mean().log()`` in SimCSE's analysis). In [-4t, 0]; lower is
    better (more uniform on the sphere).

    Exact over all n(n-1)/2 pairs, computed in row blocks (memory O(block * n)).
    """
    x = unit_rows(as_matrix(x))
    n = len(x)
    total, count = 0.0, 0
    for start in range(0, n - 1, block):
        stop = min(start + block, n)
        gram = x[start:stop] @ x[start + 1 :].T  # rows start..stop-1 against columns start+1..n-1
        upper = np.arange(start + 1, n)[None, :] > np.arange(start, stop)[:, None]  # pairs i < j only
        # exp(-t * ||x - y||^2) with ||x - y||^2 = 2 - 2 cos, in [exp(-4t), 1]: no over- or underflow
        total += float(np.exp(-t * np.maximum(2.0 - 2.0 * gram[upper], 0.0)).sum())
        count += int(upper.sum())
    return float(math.log(total / count))


# ---------------------------------------------------------------------------------------------- all at once
SENTENCE_METRICS = (
    "avg_cosine", "isoscore", "partition_isotropy", "partition_isotropy_unit", "var_top1", "var_top5", "var_top10",
    "effective_rank", "mean_norm", "centroid_norm", "centroid_ratio",
)


def sentence_metrics(x, n_pairs: int = DEFAULT_PAIRS, seed: int = 0) -> dict[str, float]:
    """Every sentence-level metric of one embedding matrix (n, d), as a flat dict of floats.

    Keys: :data:`SENTENCE_METRICS`, plus ``n`` and ``dim``. ``partition_isotropy`` is I(W) on the vectors as given;
    ``partition_isotropy_unit`` on unit-normalised rows.
    """
    x = as_matrix(x)
    var = pca_variances(x)  # one eigendecomposition for IsoScore, the shares and the effective rank
    shares = _shares(var, (1, 5, 10))
    out = {
        "avg_cosine": avg_cosine(x, n_pairs, seed),
        "isoscore": isoscore_from_variances(var),
        "partition_isotropy": partition_isotropy(x),
        "partition_isotropy_unit": partition_isotropy(x, normalize=True),
        "var_top1": shares[1],
        "var_top5": shares[5],
        "var_top10": shares[10],
        "effective_rank": _erank(np.sqrt(var * (len(x) - 1))),
        **norm_stats(x),
        "n": int(x.shape[0]),
        "dim": int(x.shape[1]),
    }
    return out


def alignment_uniformity(
    x_pos, y_pos, x_all, t: float = 2.0, alpha: float = 2.0
) -> dict[str, float | None]:
    """``alignment`` over the positive pairs (rows of x_pos with rows of y_pos; None where there are none) and
    ``uniformity`` over all pairs of rows of x_all."""
    align = alignment(x_pos, y_pos, alpha) if x_pos is not None and len(x_pos) else None
    return {"alignment": align, "uniformity": uniformity(x_all, t)}
