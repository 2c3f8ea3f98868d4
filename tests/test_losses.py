"""Each loss against a naive double-loop reference, across batch sizes, temperatures and dtypes."""

import math

import pytest
import torch

from decone.errors import ConfigError
from decone.objectives import InfoNCE, NTXent, SupCon, cosine_similarity_matrix, nt_xent


def cos(a, b):
    return float((a @ b) / (a.norm() * b.norm()))


def info_nce_reference(anchors, positives, hard=None, temperature=0.05, weight=0.0, symmetric=False):
    n = len(anchors)
    total = 0.0
    for i in range(n):
        terms = [cos(anchors[i], positives[j]) / temperature for j in range(n)]
        if hard is not None:
            terms += [cos(anchors[i], hard[j]) / temperature + (weight if j == i else 0.0) for j in range(n)]
        total += -(terms[i] - math.log(sum(math.exp(t) for t in terms)))
    loss = total / n
    if symmetric:
        back = 0.0
        for i in range(n):
            terms = [cos(positives[i], anchors[j]) / temperature for j in range(n)]
            back += -(terms[i] - math.log(sum(math.exp(t) for t in terms)))
        loss = (loss + back / n) / 2
    return loss


def nt_xent_reference(a, b, temperature):
    """SimCLR's / pytorch-metric-learning's NT-Xent, written out: every row of [a; b] anchors; its positive is its
    other view; every other row (both views) is a candidate."""
    z = list(a) + list(b)
    n = len(a)
    total = 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        denom = sum(math.exp(cos(z[i], z[j]) / temperature) for j in range(2 * n) if j != i)
        total += -(cos(z[i], z[pos]) / temperature - math.log(denom))
    return total / (2 * n)


def supcon_reference(features, labels, temperature):
    n = len(features)
    losses = []
    for i in range(n):
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denom = sum(math.exp(cos(features[i], features[a]) / temperature) for a in range(n) if a != i)
        li = -sum(math.log(math.exp(cos(features[i], features[p]) / temperature) / denom) for p in positives)
        losses.append(li / len(positives))
    return sum(losses) / len(losses) if losses else 0.0


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-9)])
@pytest.mark.parametrize("n", [2, 5, 8])
@pytest.mark.parametrize("temperature", [0.05, 0.2, 1.0])
def test_info_nce_matches_reference(n, temperature, dtype, tol):
    g = torch.Generator().manual_seed(n)
    a, p = torch.randn(n, 7, generator=g, dtype=dtype), torch.randn(n, 7, generator=g, dtype=dtype)
    got = InfoNCE(temperature).compute_loss_from_embeddings(a, p)
    assert got.dtype == dtype
    assert float(got) == pytest.approx(info_nce_reference(a, p, temperature=temperature), rel=tol, abs=tol)


@pytest.mark.parametrize("weight", [0.0, 1.0, -2.0])
@pytest.mark.parametrize("n", [3, 6])
def test_info_nce_hard_negatives_with_weight(n, weight):
    g = torch.Generator().manual_seed(7)
    a, p, h = (torch.randn(n, 5, generator=g, dtype=torch.float64) for _ in range(3))
    got = InfoNCE(0.05, hard_negative_weight=weight).compute_loss_from_embeddings(a, p, h)
    want = info_nce_reference(a, p, h, temperature=0.05, weight=weight)
    assert float(got) == pytest.approx(want, rel=1e-9)


def test_info_nce_symmetric():
    g = torch.Generator().manual_seed(3)
    a, p = torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(4, 6, generator=g, dtype=torch.float64)
    got = InfoNCE(0.1, symmetric=True).compute_loss_from_embeddings(a, p)
    assert float(got) == pytest.approx(info_nce_reference(a, p, temperature=0.1, symmetric=True), rel=1e-9)


def test_info_nce_offset_equals_slice_of_full_batch():
    """Global negatives: anchors are rows offset..offset+N of the gathered positives."""
    g = torch.Generator().manual_seed(5)
    a, p = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    loss = InfoNCE(0.05)
    full = loss.compute_loss_from_embeddings(a, p)
    halves = (loss.compute_loss_from_embeddings(a[:3], p, offset=0) + loss.compute_loss_from_embeddings(a[3:], p, offset=3)) / 2
    assert float(halves) == pytest.approx(float(full), rel=1e-12)


def test_info_nce_forward_takes_views():
    a, p, h = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)
    loss = InfoNCE(0.05)
    assert torch.equal(loss([a, p]), loss.compute_loss_from_embeddings(a, p))
    assert torch.equal(loss([a, p, h]), loss.compute_loss_from_embeddings(a, p, h))


def test_perfect_alignment_gives_low_loss():
    e = torch.eye(4)
    assert float(InfoNCE(0.05).compute_loss_from_embeddings(e, e)) < 1e-6


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-9)])
@pytest.mark.parametrize("temperature", [0.1, 0.3, 1.0])
def test_supcon_matches_reference_with_anchor_without_positive(temperature, dtype, tol):
    g = torch.Generator().manual_seed(11)
    x = torch.randn(7, 5, generator=g, dtype=dtype)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 3])  # classes 2 and 3: anchors with no positive
    got = SupCon(temperature).compute_loss_from_embeddings(x, labels)
    assert float(got) == pytest.approx(supcon_reference(x, labels.tolist(), temperature), rel=tol, abs=tol)


def test_supcon_no_positives_at_all_is_zero_and_differentiable():
    x = torch.randn(3, 4, requires_grad=True)
    loss = SupCon(0.3).compute_loss_from_embeddings(x, torch.tensor([0, 1, 2]))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()  # zero, not NaN (no 0/0 from empty positives)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-9)])
@pytest.mark.parametrize("n", [2, 5, 8])
@pytest.mark.parametrize("temperature", [0.04, 0.2, 1.0])
def test_nt_xent_matches_reference_and_differs_from_one_directional_info_nce(n, temperature, dtype, tol):
    torch.manual_seed(n)
    a, b = torch.randn(n, 16, dtype=dtype), torch.randn(n, 16, dtype=dtype)
    want = nt_xent_reference(a, b, temperature)
    assert abs(float(nt_xent(a, b, temperature)) - want) < tol * max(1.0, abs(want))
    assert abs(float(NTXent(temperature)([a, b])) - want) < tol * max(1.0, abs(want))
    # the same-view negatives count: not the one-directional nor the symmetric cross-view InfoNCE
    for symmetric in (False, True):
        assert abs(info_nce_reference(a, b, temperature=temperature, symmetric=symmetric) - want) > 1e-6


@pytest.mark.parametrize("bad", [0.0, -0.1])
def test_temperature_must_be_positive(bad):
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        InfoNCE(bad)
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        SupCon(bad)
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        NTXent(bad)


def test_cosine_similarity_matrix():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    want = torch.tensor([[1.0, 0.0], [2**-0.5, 2**-0.5]])
    assert torch.allclose(cosine_similarity_matrix(a, b), want)
