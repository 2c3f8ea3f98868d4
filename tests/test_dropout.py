"""decone.dropout: the CPU dropout that training swaps in has torch's distribution, its own reproducible stream,
exact gradients, and leaves evaluation and the saved model untouched."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from decone import dropout as D
from decone.train import TrainConfig, fit


def test_keep_mask_rate_scale_and_every_16_bit_lane_is_uniform():
    torch.manual_seed(0)
    n = 4_000_000
    keep, scale = D.keep_mask((n // 1000, 1000), 0.1)
    assert keep.shape == (n // 1000, 1000) and keep.dtype == torch.bool
    dropped_p = 6554 / 65536  # round(0.1 * 65536) levels of 65536
    assert scale == pytest.approx(1 / (1 - dropped_p), abs=0)
    sigma = (dropped_p * (1 - dropped_p) / (n / 4)) ** 0.5
    # each 64-bit draw feeds 4 consecutive elements; a biased lane (e.g. a sign bit that is never set) shows here
    lanes = (~keep).flatten().view(-1, 4).float().mean(0)
    assert torch.all((lanes - dropped_p).abs() < 6 * sigma), lanes


@pytest.mark.parametrize("p", [1e-9, 0.05, 0.1, 0.5, 0.9])
def test_keep_threshold_drops_exactly_the_rounded_share_of_int16_values(p):
    every_int16 = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    dropped = int((every_int16 < D.keep_threshold(p)).sum())
    assert dropped == round(p * 65536)
    torch.manual_seed(0)
    assert D.keep_mask((3,), p)[1] == 65536 / (65536 - dropped)


def test_dropout_with_p_next_to_one_drops_everything():
    assert torch.count_nonzero(D.dropout(torch.ones(100), 1 - 1e-7)) == 0


def test_keep_mask_follows_torch_global_generator():
    torch.manual_seed(7)
    a, _ = D.keep_mask((50, 33), 0.3)
    state = torch.get_rng_state()
    b, _ = D.keep_mask((50, 33), 0.3)
    torch.manual_seed(7)
    assert torch.equal(D.keep_mask((50, 33), 0.3)[0], a)  # same seed, same mask
    torch.set_rng_state(state)
    assert torch.equal(D.keep_mask((50, 33), 0.3)[0], b)  # GradCache's replay restores the state: same mask
    assert not torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_forward_and_backward_equal_mask_times_scale(dtype):
    x = torch.randn(6, 5, 8).to(dtype).requires_grad_()
    torch.manual_seed(3)
    y = D.dropout(x, 0.25)
    torch.manual_seed(3)
    keep, scale = D.keep_mask(x.shape, 0.25)
    assert y.dtype == dtype
    torch.testing.assert_close(y, x.detach() * keep * scale, rtol=0, atol=0)
    g = torch.randn_like(y)
    y.backward(g)
    torch.testing.assert_close(x.grad, g * keep * scale, rtol=0, atol=0)


def test_dropout_keeps_the_expectation_and_is_identity_in_eval():
    torch.manual_seed(0)
    x = torch.ones(1000, 1000)
    assert float(D.dropout(x, 0.1).mean()) == pytest.approx(1.0, abs=3e-3)
    assert D.dropout(x, 0.1, training=False) is x
    assert D.dropout(x, 0.0) is x
    assert torch.count_nonzero(D.dropout(x, 1.0)) == 0


def _qkv(seed=0, b=3, h=2, length=5, d=4):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, length, d, generator=g) for _ in range(3))
    mask = torch.ones(b, 1, length, length, dtype=torch.bool)
    mask[0, :, :, 3:] = False  # the first text has 3 real tokens
    return q, k, v, mask


def test_attention_without_dropout_is_sdpa():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    q, k, v, mask = _qkv()
    module = nn.Module()
    module.is_causal = False
    ours, _ = D.attention(module, q, k, v, mask, dropout=0.0, scaling=0.5)
    ref, _ = sdpa_attention_forward(module, q, k, v, mask, dropout=0.0, scaling=0.5)
    assert torch.equal(ours, ref)


@pytest.mark.parametrize("mask_kind", ["bool", "additive", "none"])
def test_attention_with_dropout_equals_hand_written_reference(mask_kind):
    q, k, v, mask = _qkv()
    module = nn.Module()
    module.is_causal = False
    given = {"bool": mask, "none": None,
             "additive": torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)}[mask_kind]
    torch.manual_seed(11)
    out, _ = D.attention(module, q, k, v, given, dropout=0.2, scaling=0.5)
    torch.manual_seed(11)
    keep, scale = D.keep_mask((3, 2, 5, 5), 0.2)
    scores = (q @ k.transpose(-1, -2)) * 0.5
    if mask_kind != "none":
        scores = scores.masked_fill(~mask, float("-inf"))
    ref = (torch.softmax(scores, -1) * keep * scale) @ v  # (B, h, L, d)
    assert out.shape == (3, 5, 2, 4)
    torch.testing.assert_close(out, ref.transpose(1, 2), rtol=1e-6, atol=1e-6)


def _ids():
    ids = torch.randint(5, 60, (4, 9), generator=torch.Generator().manual_seed(0))
    am = torch.ones(4, 9, dtype=torch.long)
    am[1, 5:] = 0
    return {"input_ids": ids, "attention_mask": am}


def test_cpu_dropout_swaps_and_restores_and_leaves_eval_exact(tiny_encoder):
    model = tiny_encoder.model
    n_dropout = sum(type(m) is nn.Dropout for m in model.modules())
    model.eval()
    with torch.no_grad():
        before = model(**_ids()).last_hidden_state
    with D.cpu_dropout(model) as switched:
        assert switched == n_dropout + 1  # every nn.Dropout and the attention implementation
        assert model.config._attn_implementation == D.ATTENTION
        assert not any(type(m) is nn.Dropout for m in model.modules())
        assert all(not m.training for m in model.modules())  # the swapped modules keep eval mode
        with torch.no_grad():
            assert torch.equal(model(**_ids()).last_hidden_state, before)
            model.train()
            torch.manual_seed(5)
            a = model(**_ids()).last_hidden_state
            b = model(**_ids()).last_hidden_state
            torch.manual_seed(5)
            a2 = model(**_ids()).last_hidden_state
        assert not torch.allclose(a, b)  # dropout is on
        assert torch.equal(a, a2)  # and reproducible
    model.eval()
    assert model.config._attn_implementation == "sdpa"
    assert sum(type(m) is nn.Dropout for m in model.modules()) == n_dropout
    with torch.no_grad():
        assert torch.equal(model(**_ids()).last_hidden_state, before)


def test_cpu_dropout_with_near_zero_rate_matches_eval(tiny_encoder):
    """The explicit attention path computes what SDPA computes when nothing is dropped."""
    model = tiny_encoder.model
    model.eval()
    with torch.no_grad():
        ref = model(**_ids()).last_hidden_state
    with D.cpu_dropout(model):
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = 1e-9  # rounds to 0 of 65536 levels: nothing dropped, but the training path runs
        model.train()
        with torch.no_grad():
            out = model(**_ids()).last_hidden_state
    real = _ids()["attention_mask"].bool()
    torch.testing.assert_close(out[real], ref[real], rtol=1e-5, atol=1e-5)


def test_fit_uses_fast_dropout_by_default_and_torch_dropout_when_asked(tmp_path, tiny_model_dir):
    data = tmp_path / "s.txt"
    data.write_text("\n".join(f"sentence number {i} about the cat and the dog" for i in range(32)) + "\n")
    losses, configs = {}, {}
    for name, fast in (("fast", None), ("fast-again", True), ("torch", False)):
        out = tmp_path / name
        fit(TrainConfig(method="simcse", model=str(tiny_model_dir), data=str(data), output=str(out), max_steps=3,
                        batch_size=8, log_every=1, bf16=False, fast_dropout=fast))
        losses[name] = [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]
        configs[name] = (out / "config.json").read_text()
    assert losses["fast"] == losses["fast-again"]  # None means on
    assert losses["fast"] != losses["torch"]  # a different random stream
    assert configs["fast"] == configs["torch"]  # nothing of the swap reaches the saved model


def test_resume_keeps_the_dropout_the_run_started_with(tmp_path, tiny_model_dir):
    from decone.errors import ConfigError

    data = tmp_path / "s.txt"
    data.write_text("\n".join(f"sentence number {i} about the cat and the dog" for i in range(32)) + "\n")
    out = tmp_path / "run"
    cfg = dict(method="simcse", model=str(tiny_model_dir), data=str(data), output=str(out), max_steps=4, batch_size=8,
               save_every=2, bf16=False, keep_checkpoint=True)
    fit(TrainConfig(**cfg, fast_dropout=False))
    state_file = out / "checkpoint" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    assert state["config"]["fast_dropout"] is False
    with pytest.raises(ConfigError, match="interrupted run used --torch-dropout, now --fast-dropout"):
        fit(TrainConfig(**cfg, resume=True, fast_dropout=True))
    del state["config"]["fast_dropout"]  # a checkpoint from before decone.dropout: it trained with torch's
    state_file.write_text(json.dumps(state))
    with pytest.raises(ConfigError, match="interrupted run used --torch-dropout, now --fast-dropout"):
        fit(TrainConfig(**cfg, resume=True, fast_dropout=True))
    fit(TrainConfig(**cfg, resume=True))  # no flag: continues as it started
