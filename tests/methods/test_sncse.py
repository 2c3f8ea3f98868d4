"""SNCSE: the bidirectional margin loss against hand-computed values, the soft-negative views, one step lowering the
objective, GradCache equivalence, and an end-to-end run whose folder loads in sentence-transformers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from decone.encoder import Encoder, MLPHead
from decone.errors import ConfigError
from decone.methods import get_method
from decone.methods.sncse import SNCSE, SNCSEOptions, bidirectional_margin_loss, soft_negative_views
from decone.objectives import info_nce

SENTENCES = [
    "the cat is on the mat", "a dog ran in the city", "the man plays music", "a woman is reading a book",
    "the child is happy", "the movie was terrible", "phone sales rise", "the teacher can read",
]


def _at_angle(theta_deg: float) -> torch.Tensor:
    t = math.radians(theta_deg)
    return torch.tensor([[math.cos(t), math.sin(t)]])


@pytest.mark.parametrize("pos_deg, neg_deg", [(0, 0), (30, 80), (0, 10), (60, 65), (0, 90), (10, 80)])
def test_bml_against_a_hand_computed_reference(pos_deg, neg_deg):
    """delta = cos(a, n) - cos(a, p); BML = ReLU(delta + 0.1) + ReLU(-delta - 0.3): zero for delta in [-0.3, -0.1]."""
    anchor, positive, negative = _at_angle(0), _at_angle(pos_deg), _at_angle(neg_deg)
    delta = math.cos(math.radians(neg_deg)) - math.cos(math.radians(pos_deg))
    expected = max(delta + 0.1, 0.0) + max(-delta - 0.3, 0.0)
    got = float(bidirectional_margin_loss(anchor, positive, negative, alpha=0.1, beta=0.3))
    assert got == pytest.approx(expected, abs=1e-6)
    inside = -0.3 <= delta <= -0.1
    assert (got == 0.0) == inside


def test_bml_zero_inside_the_band_positive_on_both_sides():
    a = _at_angle(0)
    p = a.clone()  # cos(a, p) = 1
    # cos(a, n) = 0.8 -> delta = -0.2: inside the band
    assert float(bidirectional_margin_loss(a, p, torch.tensor([[0.8, 0.6]]), 0.1, 0.3)) == pytest.approx(0.0, abs=1e-7)
    # cos(a, n) = 1.0 -> delta = 0: too close, ReLU(0 + 0.1) = 0.1
    assert float(bidirectional_margin_loss(a, p, a.clone(), 0.1, 0.3)) == pytest.approx(0.1, abs=1e-6)
    # cos(a, n) = 0.0 -> delta = -1: too far, ReLU(1 - 0.3) = 0.7
    assert float(bidirectional_margin_loss(a, p, torch.tensor([[0.0, 1.0]]), 0.1, 0.3)) == pytest.approx(0.7, abs=1e-6)
    # the mean over rows
    negatives = torch.tensor([[0.8, 0.6], [1.0, 0.0], [0.0, 1.0]])
    rows = bidirectional_margin_loss(a.repeat(3, 1), p.repeat(3, 1), negatives, 0.1, 0.3)
    assert float(rows) == pytest.approx((0.0 + 0.1 + 0.7) / 3, abs=1e-6)


def test_objective_is_infonce_plus_weighted_bml():
    torch.manual_seed(0)
    a, p, n = torch.randn(3, 6, 8).unbind(0)
    obj = SNCSE(temperature=0.05, bml_weight=0.5, alpha=0.1, beta=0.3)
    expected = info_nce(a, p, 0.05) + 0.5 * bidirectional_margin_loss(a, p, n, 0.1, 0.3)
    assert float(obj.loss_from_embeddings([a, p, n])) == pytest.approx(float(expected), rel=1e-6)
    assert set(obj.after_step(None)) == {"infonce", "bml"}


def test_views_are_two_copies_and_the_negation():
    views = soft_negative_views()([("A woman is slicing an onion.",), ("She doesn't like apples.",)], None)
    assert views == [["A woman is slicing an onion.", "She doesn't like apples."]] * 2 + [
        ["A woman is not slicing an onion.", "She likes apples."]]


def test_registered_with_paper_defaults_and_checked_options():
    method = get_method("sncse")
    assert "2201.05979" in method.citation
    assert method.defaults["temperature"] == 0.05 and method.defaults["batch_size"] == 256
    assert method.defaults["lr"] == 1e-5 and method.defaults["max_length"] == 32
    opts = SNCSEOptions()
    assert (opts.bml_weight, opts.bml_alpha, opts.bml_beta) == (1e-3, 0.1, 0.3)
    with pytest.raises(ConfigError, match="bml_alpha"):
        SNCSEOptions(bml_alpha=0.5, bml_beta=0.3).validate()
    assert SNCSE().gradcache_refusal is None and SNCSE().distributed_refusal is None


def _trainable(tiny_model_dir, objective):
    from decone.train import Trainable

    torch.manual_seed(0)
    enc = Encoder.load(tiny_model_dir, pooling="cls_before_pooler", device="cpu")
    return Trainable(enc, MLPHead(enc.dim), objective, max_length=16)


def test_one_step_lowers_the_objective(tiny_model_dir):
    model = _trainable(tiny_model_dir, SNCSE(0.05, bml_weight=1.0))  # a weight that makes BML matter
    model.train()
    views = soft_negative_views()([(s,) for s in SENTENCES], None)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def loss_at_seed():
        torch.manual_seed(0)  # the same dropout masks
        return model.compute_loss(views, None, use_bf16=False)

    before = loss_at_seed()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_at_seed()
    assert float(after) < float(before.detach())


def test_gradcache_gives_the_full_batch_gradient(tiny_model_dir):
    from decone.gradcache import cached_loss_and_backward

    model = _trainable(tiny_model_dir, SNCSE(0.05, bml_weight=1.0))
    model.eval()  # no dropout: both passes see the same function
    views = soft_negative_views()([(s,) for s in SENTENCES], None)
    full = model.compute_loss(views, None, use_bf16=False)
    full.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    cached = cached_loss_and_backward(model, views, None, False, mini_batch_size=3)
    assert float(cached) == pytest.approx(float(full.detach()), rel=1e-5)
    for name, p in model.named_parameters():
        if name in grads:
            torch.testing.assert_close(p.grad, grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_end_to_end_folder_loads_in_sentence_transformers(tiny_model_dir, tmp_path):
    _end_to_end("sncse", tiny_model_dir, tmp_path)


def _end_to_end(method: str, model_dir: Path, tmp_path: Path, **kw) -> Path:
    """fit 2 steps; the folder loads equally in decone and sentence-transformers and holds only the encoder."""
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer

    from decone.train import TrainConfig, fit

    data = tmp_path / "sents.txt"
    data.write_text("\n".join(SENTENCES) + "\n")
    out = tmp_path / "out"
    summary = fit(TrainConfig(method=method, model=str(model_dir), data=str(data), output=str(out), max_steps=2,
                              batch_size=4, bf16=False, **kw))
    assert summary["steps"] == 2 and np.isfinite(summary["final_loss"])
    texts = ["the cat sat on the mat", "a man is playing music"]
    ours = Encoder.load(out, device="cpu").encode(texts)
    theirs = SentenceTransformer(str(out), device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    weights = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.safetensors"))
    assert weights == ["model.safetensors"], weights
    assert set(load_file(out / "model.safetensors")) == set(load_file(model_dir / "model.safetensors"))
    return out
