"""Sentence-level metrics on synthetic matrices with known answers, and against naive reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from decone.diagnostics import metrics as m


def orthonormal_centered(n: int, r: int, seed: int = 0) -> np.ndarray:
    """(n, r) orthonormal columns, each orthogonal to the all-ones vector (so U diag(s) V^T is already centred)."""
    rng = np.random.default_rng(seed)
    a = np.concatenate([np.ones((n, 1)), rng.standard_normal((n, r))], axis=1)
    q, _ = np.linalg.qr(a)
    return q[:, 1:]


def known_rank(n: int, d: int, s: np.ndarray, seed: int = 0) -> np.ndarray:
    """A centred (n, d) matrix with exactly the singular values ``s``."""
    u = orthonormal_centered(n, len(s), seed)
    v, _ = np.linalg.qr(np.random.default_rng(seed + 1).standard_normal((d, len(s))))
    return u @ np.diag(s) @ v.T


# ------------------------------------------------------------------------------------------------ isotropic Gaussian
@pytest.fixture(scope="module")
def gaussian():
    return np.random.default_rng(0).standard_normal((20000, 16))


def test_isotropic_gaussian(gaussian):
    assert abs(m.avg_cosine(gaussian)) < 0.02
    assert m.isoscore(gaussian) > 0.98
    assert m.partition_isotropy(gaussian) > 0.85
    assert m.partition_isotropy(gaussian, normalize=True) > 0.95
    assert m.effective_rank(gaussian) > 15.5
    shares = m.variance_shares(gaussian)
    assert shares[1] == pytest.approx(1 / 16, abs=0.01)
    assert shares[5] == pytest.approx(5 / 16, abs=0.02)
    assert m.norm_stats(gaussian)["centroid_ratio"] < 0.02


def test_shifted_gaussian_is_anisotropic(gaussian):
    shifted = gaussian + 5.0  # a cone: every vector near the all-fives direction
    assert m.avg_cosine(shifted) > 0.9
    assert m.partition_isotropy(shifted) < 1e-6
    # IsoScore only sees the covariance, which a shift does not change
    assert m.isoscore(shifted) == pytest.approx(m.isoscore(gaussian), abs=1e-9)
    assert m.norm_stats(shifted)["centroid_ratio"] > 0.95


# ------------------------------------------------------------------------------------------------ one direction
def test_all_vectors_in_one_direction():
    rng = np.random.default_rng(1)
    u = rng.standard_normal(12)
    a = rng.uniform(1, 2, size=(300, 1))
    x = a * u
    assert m.avg_cosine(x) == pytest.approx(1.0, abs=1e-12)
    assert m.isoscore(x) == pytest.approx(0.0, abs=1e-9)
    assert m.variance_shares(x)[1] == pytest.approx(1.0)
    assert m.effective_rank(x) == pytest.approx(1.0, abs=1e-6)
    # Z(c) = n for every direction orthogonal to u; the extremes are c = +-u/|u|
    proj = a[:, 0] * np.linalg.norm(u)
    assert m.partition_isotropy(x) == pytest.approx(np.exp(-proj).sum() / np.exp(proj).sum(), rel=1e-6)


def test_identical_rows_degenerate():
    x = np.ones((5, 4))
    assert m.isoscore(x) == 0.0
    assert m.effective_rank(x) == 0.0
    assert m.variance_shares(x) == {1: 1.0, 5: 1.0, 10: 1.0}
    assert m.avg_cosine(x) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------ known rank
def test_known_rank_equal_singular_values():
    x = known_rank(200, 20, np.full(8, 3.0))
    assert m.effective_rank(x) == pytest.approx(8.0, abs=1e-6)
    shares = m.variance_shares(x, (1, 5, 10))
    assert shares == pytest.approx({1: 1 / 8, 5: 5 / 8, 10: 1.0}, abs=1e-9)
    assert np.count_nonzero(m.pca_variances(x) > 1e-9) == 8
    # 8 equally used dimensions out of 20: IsoScore = (k - 1) / (d - 1) with k = 8 dimensions used
    assert m.isoscore(x) == pytest.approx((8 - 1) / (20 - 1), abs=1e-9)


def test_known_rank_unequal_singular_values():
    s = np.array([4.0, 3.0, 2.0, 1.0])
    x = known_rank(100, 10, s, seed=3)
    p = s / s.sum()
    assert m.effective_rank(x) == pytest.approx(math.exp(-(p * np.log(p)).sum()), abs=1e-6)
    var = s**2
    assert m.variance_shares(x, (1, 2))[1] == pytest.approx(var[0] / var.sum(), abs=1e-9)
    assert m.variance_shares(x, (1, 2))[2] == pytest.approx(var[:2].sum() / var.sum(), abs=1e-9)
    np.testing.assert_allclose(m.singular_values(x)[:4], s, atol=1e-6)


def test_fewer_rows_than_dimensions():
    x = np.random.default_rng(0).standard_normal((5, 40))
    var = m.pca_variances(x)
    assert var.shape == (40,)
    assert np.count_nonzero(var > 1e-9) == 4
    assert 0.0 <= m.isoscore(x) < 0.2


# ------------------------------------------------------------------------------------------------ references
def reference_isoscore(points: np.ndarray) -> float:
    """Rudman et al.'s published algorithm, step by step (points: n x d)."""
    from sklearn.decomposition import PCA

    d = points.shape[1]
    pca = PCA(n_components=d).fit_transform(points)
    cov_diag = np.diag(np.cov(pca.T))
    normalized = cov_diag * np.sqrt(d) / np.linalg.norm(cov_diag)
    defect = np.linalg.norm(normalized - np.ones(d)) / np.sqrt(2 * (d - np.sqrt(d)))
    return ((d - defect**2 * (d - np.sqrt(d))) ** 2 - d) / (d * (d - 1))


def test_isoscore_matches_reference():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((500, 10)) @ np.diag(np.linspace(0.2, 3, 10)) @ rng.standard_normal((10, 10))
    assert m.isoscore(x) == pytest.approx(reference_isoscore(x), abs=1e-9)


def test_partition_isotropy_matches_naive():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((300, 6)) * 0.5 + 0.3
    _, vecs = np.linalg.eig(x.T @ x)
    z = [np.exp(x @ (sign * vecs[:, i].real)).sum() for i in range(6) for sign in (1, -1)]
    assert m.partition_isotropy(x) == pytest.approx(min(z) / max(z), rel=1e-9)


def test_avg_cosine_exact_for_small_matrices():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    expected = np.mean([0.0, 1 / math.sqrt(2), 1 / math.sqrt(2)])
    assert m.avg_cosine(x) == pytest.approx(expected)


def test_avg_cosine_sampling_is_seeded():
    x = np.random.default_rng(0).standard_normal((500, 8)) + 0.3
    assert m.avg_cosine(x, n_pairs=1000, seed=1) == m.avg_cosine(x, n_pairs=1000, seed=1)
    assert m.avg_cosine(x, n_pairs=1000, seed=1) != m.avg_cosine(x, n_pairs=1000, seed=2)
    i, j = m.random_pairs(500, 1000, seed=1)
    assert len(i) == 1000 and not np.any(i == j)


def test_alignment_and_uniformity_match_naive():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((50, 5)), rng.standard_normal((50, 5))
    ux = x / np.linalg.norm(x, axis=1, keepdims=True)
    uy = y / np.linalg.norm(y, axis=1, keepdims=True)
    naive_align = np.mean([np.sum((a - b) ** 2) for a, b in zip(ux, uy)])
    assert m.alignment(x, y) == pytest.approx(naive_align)
    pairs = [np.exp(-2 * np.sum((ux[i] - ux[j]) ** 2)) for i in range(50) for j in range(i + 1, 50)]
    assert m.uniformity(x) == pytest.approx(math.log(np.mean(pairs)))
    # SimCSE's formula
    t = torch.nn.functional.normalize(torch.tensor(x), dim=1)
    assert m.uniformity(x, block=7) == pytest.approx(torch.pdist(t, p=2).pow(2).mul(-2).exp().mean().log().item())
    assert m.alignment(x, x) == pytest.approx(0.0)


def test_norm_stats():
    out = m.norm_stats(np.array([[3.0, 4.0], [3.0, 4.0]]))
    assert out == pytest.approx({"mean_norm": 5.0, "centroid_norm": 5.0, "centroid_ratio": 1.0})
    out = m.norm_stats(np.array([[3.0, 4.0], [-3.0, -4.0]]))
    assert out["centroid_norm"] == pytest.approx(0.0)


def test_sentence_metrics_keys_and_values():
    x = np.random.default_rng(0).standard_normal((400, 12))
    out = m.sentence_metrics(x, n_pairs=2000, seed=0)
    assert set(m.SENTENCE_METRICS) <= set(out)
    assert out["n"] == 400 and out["dim"] == 12
    assert out["isoscore"] == pytest.approx(m.isoscore(x))
    assert out["effective_rank"] == pytest.approx(m.effective_rank(x))
    assert out["var_top5"] == pytest.approx(m.variance_shares(x)[5])


def test_bad_input():
    with pytest.raises(ValueError):
        m.isoscore(np.zeros(5))
    with pytest.raises(ValueError):
        m.avg_cosine(np.array([[np.nan, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError):
        m.alignment(np.ones((3, 2)), np.ones((4, 2)))
