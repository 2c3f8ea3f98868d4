"""The kept, sparsely filled word-embedding gradient: the same gradients and training, one buffer for the whole run."""

import json

import pytest
import torch
from torch import nn

import decone.train.trainer
from decone.embedding_grad import KeptEmbeddingGrad, input_embedding
from decone.encoder import MLPHead
from decone.objectives import InfoNCE
from decone.train import TrainConfig, Trainable, fit

TEXTS = ["the cat sat on the mat", "the dog ran", "a man plays the music", "the the the cat", "water is cold"]


def _model(tiny_encoder) -> Trainable:
    model = Trainable(tiny_encoder, MLPHead(32), InfoNCE(0.05))
    model.train()
    return model


def _grads(model: Trainable, passes: int = 1) -> dict[str, torch.Tensor]:
    """Gradients of ``passes`` backward passes over the same batch, dropout masks fixed by the seed."""
    torch.manual_seed(0)
    for _ in range(passes):
        model.compute_loss([TEXTS, list(TEXTS)], None, use_bf16=False).backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("passes", [1, 2])  # 2: accumulation over several backward passes (GradCache)
def test_gradients_equal_the_dense_embedding_backward(tiny_encoder, passes):
    model = _model(tiny_encoder)
    dense = _grads(model, passes)
    for p in model.parameters():
        p.grad = None
    embedding = tiny_encoder.model.get_input_embeddings()
    with KeptEmbeddingGrad.for_model(tiny_encoder.model, torch.device("cpu")) as kept:
        assert kept.active and embedding.sparse
        kept_grads = _grads(model, passes)
        assert not embedding.weight.grad.is_sparse  # what clipping, AdamW and the all-reduce see
    assert dense.keys() == kept_grads.keys()
    for name in dense:
        torch.testing.assert_close(kept_grads[name], dense[name], rtol=1e-5, atol=1e-6, msg=name)
    word = dense["encoder.model.embeddings.word_embeddings.weight"]
    used = torch.unique(torch.tensor([i for ids in model.tokenize_ids(TEXTS) for i in ids]))
    unused = torch.ones(word.shape[0], dtype=torch.bool)
    unused[used] = False
    assert word[used].abs().sum(1).gt(0).all() and word[unused].eq(0).all()  # a real test: only used rows move


def test_the_buffer_is_kept_zeroed_and_released(tiny_encoder):
    model = _model(tiny_encoder)
    embedding = tiny_encoder.model.get_input_embeddings()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with KeptEmbeddingGrad.for_model(tiny_encoder.model, torch.device("cpu")) as kept:
        buffer = embedding.weight.grad
        assert buffer is not None and buffer.eq(0).all()
        for _ in range(2):
            model.compute_loss([TEXTS, list(TEXTS)], None, use_bf16=False).backward()
            assert embedding.weight.grad is buffer and buffer.abs().sum() > 0  # filled in place
            optimizer.step()
            kept.zero_grad(optimizer)
            assert embedding.weight.grad is buffer and buffer.eq(0).all()
            others = [p.grad for p in model.parameters() if p is not embedding.weight]
            assert all(g is None for g in others)  # the rest as optimizer.zero_grad(set_to_none=True) leaves them
    assert embedding.sparse is False and embedding.weight.grad is None


def test_a_no_op_off_cpu_and_for_embeddings_it_cannot_keep(tiny_encoder):
    model = tiny_encoder.model
    embedding = model.get_input_embeddings()
    assert input_embedding(model) is embedding
    assert not KeptEmbeddingGrad.for_model(model, torch.device("meta")).active
    assert input_embedding(nn.Linear(2, 2)) is None
    embedding.scale_grad_by_freq = True  # torch has no sparse backward for it
    assert input_embedding(model) is None
    embedding.scale_grad_by_freq = False
    embedding.weight.requires_grad_(False)
    assert input_embedding(model) is None
    param = next(model.encoder.parameters())
    param.grad = torch.ones_like(param)
    optimizer = torch.optim.SGD([param], lr=0.1)
    with KeptEmbeddingGrad(None) as kept:
        kept.zero_grad(optimizer)  # just optimizer.zero_grad(set_to_none=True)
    assert param.grad is None and embedding.sparse is False


def test_a_gradient_already_there_is_kept_dense(tiny_encoder):
    embedding = tiny_encoder.model.get_input_embeddings()
    rows = torch.tensor([[3, 5]])
    embedding.weight.grad = torch.sparse_coo_tensor(rows, torch.ones(2, embedding.embedding_dim), embedding.weight.shape,
                                                    check_invariants=True)
    with KeptEmbeddingGrad.for_model(tiny_encoder.model, torch.device("cpu")):
        grad = embedding.weight.grad
        assert grad.layout == torch.strided and grad[3].eq(1).all() and grad[5].eq(1).all() and grad.sum() == 2 * grad.shape[1]


def test_fit_trains_as_with_the_dense_gradient_and_restores_the_model(tmp_path, tiny_model_dir, monkeypatch):
    data = tmp_path / "s.txt"
    data.write_text("\n".join(f"sentence number {i} about the cat and the dog" for i in range(32)) + "\n")

    def run(name: str) -> list[float]:
        fit(TrainConfig(method="simcse", model=str(tiny_model_dir), data=str(data), output=str(tmp_path / name),
                        max_steps=5, batch_size=8, log_every=1, bf16=False, lr=1e-3, adaptive_threads=False))
        rows = (tmp_path / name / "train_log.jsonl").read_text().splitlines()
        return [json.loads(r)["loss"] for r in rows]

    seen = []
    original = KeptEmbeddingGrad.for_model.__func__

    def spy(cls, model, device):
        kept = original(cls, model, device)
        seen.append(kept)
        return kept

    monkeypatch.setattr(decone.train.trainer.KeptEmbeddingGrad, "for_model", classmethod(spy))
    kept_losses = run("kept")
    assert seen[0].active and seen[0].embedding.sparse is False  # it ran, and the flag is restored
    monkeypatch.setattr(decone.train.trainer.KeptEmbeddingGrad, "for_model", classmethod(lambda cls, m, d: cls(None)))
    dense_losses = run("dense")
    assert kept_losses == pytest.approx(dense_losses, rel=1e-4, abs=1e-6)
    assert kept_losses[-1] < kept_losses[0]
    config = json.loads((tmp_path / "kept" / "config.json").read_text())
    assert config == json.loads((tmp_path / "dense" / "config.json").read_text())
