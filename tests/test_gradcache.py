"""GradCache (--mini-batch-size) gives the full-batch loss and gradients, dropout included."""

from __future__ import annotations

import contextlib

import pytest
import torch

from decone.dropout import cpu_dropout
from decone.embedding_grad import KeptEmbeddingGrad
from decone.encoder import MLPHead
from decone.gradcache import RandContext, cached_loss_and_backward, chunk_ranges
from decone.objectives import InfoNCE
from decone.train import Trainable

SENTS = [
    "the cat sat on the mat", "a dog ran in the city", "the man plays music", "she reads a good book",
    "stock price rise", "the child is happy", "a big red car on the road", "hot water and cold fire",
    "the teacher and the student", "one two three", "news of the day", "the old house by the tree",
    "we play in the market", "they run fast", "a sad film", "the great movie was not bad",
    "he sat", "green tree", "the night was cold and the city was slow", "i write a song",
    "phone sales fall", "holiday shopping", "the woman ran to school", "a small blue book",
]


def make_model(encoder, head: bool = True, temperature: float = 0.05, symmetric: bool = False) -> Trainable:
    torch.manual_seed(1)
    h = MLPHead(encoder.model.config.hidden_size) if head else None
    model = Trainable(encoder, h, InfoNCE(temperature, symmetric=symmetric), max_length=16)
    model.train()
    return model


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def reference_full_batch(model, views, chunk: int, seed: int):
    """The uncached full batch: every text embedded WITH the graph, all kept, one loss, one backward.

    The texts go through the encoder in the same consecutive mini-batches as GradCache's (``chunk`` examples, i.e.
    ``chunk * K`` texts of the view-major flattened batch), so each row draws the same dropout mask; everything else
    (the loss over all rows, the single backward) is the plain full-batch computation.
    """
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    k, b = len(views), len(views[0])
    texts = [t for v in views for t in v]
    z = torch.cat([model.embed(texts[s:e], False) for s, e in chunk_ranges(len(texts), chunk * k)])
    loss = model.loss_from_views(list(z.view(k, b, -1).unbind(0)), None)
    loss.backward()
    return loss.detach(), grads(model)


def cached(model, views, chunk: int, seed: int):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss = cached_loss_and_backward(model, views, None, False, chunk)
    return loss, grads(model)


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    assert any(float(g.abs().sum()) > 0 for g in b.values()), "the reference gradients are all zero: nothing compared"
    return max(float((a[n] - b[n]).abs().max()) for n in a)


@pytest.mark.parametrize("fast_dropout", [False, True], ids=["torch-dropout", "fast-dropout"])
@pytest.mark.parametrize("chunk", [3, 8, 24])
def test_gradcache_equals_full_batch_with_dropout(tiny_encoder, chunk, fast_dropout):
    model = make_model(tiny_encoder)
    views = [SENTS, list(SENTS)]  # SimCSE: the same texts twice, dropout makes the views
    with cpu_dropout(tiny_encoder.model) if fast_dropout else contextlib.nullcontext():  # what fit trains with on CPU
        ref_loss, ref_grads = reference_full_batch(model, views, chunk, seed=123)
        loss, got = cached(model, views, chunk, seed=123)
    assert abs(float(loss) - float(ref_loss)) <= 1e-5
    assert len(got) > 10
    assert max_diff(got, ref_grads) <= 1e-5


def test_gradcache_with_the_kept_embedding_gradient_equals_full_batch(tiny_encoder):
    """As fit runs it on CPU: the mini-batches' sparse embedding gradients accumulate into the kept dense buffer."""
    model = make_model(tiny_encoder)
    views = [SENTS, list(SENTS)]
    with cpu_dropout(tiny_encoder.model):
        ref_loss, ref_grads = reference_full_batch(model, views, 8, seed=123)
        model.zero_grad(set_to_none=True)
        with KeptEmbeddingGrad.for_model(tiny_encoder.model, torch.device("cpu")) as kept:
            assert kept.active
            torch.manual_seed(123)
            buffer = tiny_encoder.model.get_input_embeddings().weight.grad
            loss = cached_loss_and_backward(model, views, None, False, 8)
            got = grads(model)
            assert tiny_encoder.model.get_input_embeddings().weight.grad is buffer  # 6 passes, added in place
    assert abs(float(loss) - float(ref_loss)) <= 1e-5
    assert max_diff(got, ref_grads) <= 1e-5


def test_gradcache_three_views_symmetric_loss(tiny_encoder):
    model = make_model(tiny_encoder, head=False, symmetric=True)
    views = [SENTS[:12], SENTS[12:], SENTS[6:18]]  # anchors, positives, hard negatives; 36 texts in chunks of 15
    ref_loss, ref_grads = reference_full_batch(model, views, 5, seed=5)
    loss, got = cached(model, views, 5, seed=5)
    assert abs(float(loss) - float(ref_loss)) <= 1e-5
    assert max_diff(got, ref_grads) <= 1e-5


def test_gradcache_equals_one_forward_without_dropout(tiny_encoder):
    """Dropout off: GradCache equals the trainer's own uncached path (one forward over all K*B texts)."""
    model = make_model(tiny_encoder)
    model.eval()  # dropout off; padding differs per mini-batch but padded positions are masked out
    views = [SENTS, list(SENTS)]
    model.zero_grad(set_to_none=True)
    ref_loss = model.compute_loss(views, None, False)
    ref_loss.backward()
    ref_loss = ref_loss.detach()
    ref_grads = grads(model)
    loss, got = cached(model, views, 5, seed=0)
    assert abs(float(loss) - float(ref_loss)) <= 1e-5
    assert max_diff(got, ref_grads) <= 1e-5


def test_without_rng_restore_simcse_breaks(tiny_encoder, monkeypatch):
    """The test above has teeth: re-running mini-batches with fresh dropout masks gives wrong gradients."""
    model = make_model(tiny_encoder)
    views = [SENTS, list(SENTS)]
    _, ref_grads = reference_full_batch(model, views, 8, seed=123)

    class NoRestore(RandContext):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr("decone.gradcache.RandContext", NoRestore)
    _, got = cached(model, views, 8, seed=123)
    assert max_diff(got, ref_grads) > 1e-4


def test_rng_ends_where_the_first_pass_left_it(tiny_encoder):
    """The second pass leaves the global RNG as the first pass left it: runs stay reproducible and resumable."""
    model = make_model(tiny_encoder)
    views = [SENTS[:8], SENTS[:8]]
    torch.manual_seed(7)
    with torch.no_grad():
        for s, e in chunk_ranges(16, 6):  # 3 examples x 2 views a pass
            model.embed([t for v in views for t in v][s:e], False)
    expected = torch.get_rng_state()
    torch.manual_seed(7)
    cached_loss_and_backward(model, views, None, False, 3)
    assert torch.equal(torch.get_rng_state(), expected)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gradcache_on_cuda_restores_the_cuda_rng(tiny_encoder):
    """On a GPU dropout draws from the CUDA generator: GradCache must replay it too (bf16 autocast off and on)."""
    model = make_model(tiny_encoder).to("cuda")
    views = [SENTS, list(SENTS)]
    ref_loss, ref_grads = reference_full_batch(model, views, 8, seed=11)
    loss, got = cached(model, views, 8, seed=11)
    assert abs(float(loss) - float(ref_loss)) <= 1e-5
    assert max_diff(got, ref_grads) <= 1e-5
    for bf16 in (True,):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(3)
        texts = [t for v in views for t in v]
        z = torch.cat([model.embed(texts[s:e], bf16) for s, e in chunk_ranges(len(texts), 16)])
        ref = model.loss_from_views(list(z.view(2, len(SENTS), -1).unbind(0)), None)
        ref.backward()
        ref_grads = grads(model)
        model.zero_grad(set_to_none=True)
        torch.manual_seed(3)
        loss = cached_loss_and_backward(model, views, None, bf16, 8)
        assert abs(float(loss) - float(ref.detach())) <= 1e-4
        assert max_diff(grads(model), ref_grads) <= 1e-3  # bf16: the two passes run the same kernels on the same masks


def test_fit_with_mini_batch_size(tiny_model_dir, tmp_path):
    """--mini-batch-size through the trainer: trains and saves like the uncached run."""
    from safetensors.torch import load_file

    from decone.data import Dataset
    from decone.train import TrainConfig, fit

    data = Dataset([(s,) for s in SENTS], source="mem")
    outs = {}
    for name, mbs in (("plain", 0), ("cached", 8)):
        cfg = TrainConfig(method="simcse", model=str(tiny_model_dir), output=str(tmp_path / name), batch_size=12,
                          max_steps=2, mini_batch_size=mbs, bf16=False, pooling="mean", head="mlp-train", save_every=100)
        summary = fit(cfg, data=data)
        assert summary["steps"] == 2 and summary["final_loss"] > 0
        outs[name] = load_file(tmp_path / name / "model.safetensors")
    # dropout is on in both runs and the two draw masks differently (one forward vs mini-batches): same shapes,
    # finite weights; exact equality is tested above at the level of one batch
    for k, v in outs["plain"].items():
        assert v.shape == outs["cached"][k].shape and torch.isfinite(outs["cached"][k]).all()
