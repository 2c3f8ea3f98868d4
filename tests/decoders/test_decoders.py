"""decone.decoders on tiny random decoders of each family: detection, padding, poolings, the bidirectional switch."""

from __future__ import annotations

import json

import pytest
import torch

from decone import decoders
from decone.decoders import (bidirectional, disable_bidirectional, drop_first_token, enable_bidirectional,
                             ensure_pad_token, is_bidirectional, is_decoder_config, last_token, weighted_mean)
from tests.decoders.conftest import FAMILIES, VOCAB, tiny_config, tiny_decoder, tiny_tokenizer


# ---------------------------------------------------------------------------------------------- detection, padding
@pytest.mark.parametrize("family", FAMILIES)
def test_decoder_families_are_decoders(family):
    assert is_decoder_config(tiny_config(family))


def test_encoders_and_seq2seq_are_not_decoders():
    from transformers import BartConfig, BertConfig, RobertaConfig, T5Config

    # BERT and RoBERTa are in the causal-LM mapping too (an LM head for generation); BART and T5 are seq2seq
    for config in (BertConfig(), RobertaConfig(), BartConfig(), T5Config()):
        assert not is_decoder_config(config), config.model_type


def test_ensure_pad_token_pads_with_eos_once():
    tok, config = tiny_tokenizer(), tiny_config("gpt2")
    assert tok.pad_token is None and config.pad_token_id is None
    note = ensure_pad_token(tok, config)
    assert note is not None and "eos" in note and "\n" not in note
    assert tok.pad_token == tok.eos_token and config.pad_token_id == tok.eos_token_id == 0
    assert ensure_pad_token(tok, config) is None  # nothing left to do, nothing to say


def test_ensure_pad_token_without_eos_fails():
    tok = tiny_tokenizer()
    tok.eos_token = None
    with pytest.raises(ValueError, match="neither a padding token nor an eos token"):
        ensure_pad_token(tok)


# ---------------------------------------------------------------------------------------------- poolings
def _padded(states: list[torch.Tensor], side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of different lengths (L_i, d) -> (B, T, d) padded with garbage on ``side``, and the (B, T) mask."""
    width = max(len(s) for s in states)
    out = torch.full((len(states), width, states[0].shape[1]), 1e3)  # loud garbage: must never leak in
    mask = torch.zeros(len(states), width, dtype=torch.long)
    for i, s in enumerate(states):
        sl = slice(0, len(s)) if side == "right" else slice(width - len(s), width)
        out[i, sl], mask[i, sl] = s, 1
    return out, mask


@pytest.mark.parametrize("side", ["right", "left"])
def test_last_token_takes_the_last_real_token(side):
    torch.manual_seed(0)
    rows = [torch.randn(n, 5) for n in (4, 1, 6)]
    x, mask = _padded(rows, side)
    expected = torch.stack([r[-1] for r in rows])
    torch.testing.assert_close(last_token(x, mask), expected)


@pytest.mark.parametrize("side", ["right", "left"])
def test_weighted_mean_is_sgpt_position_weighting(side):
    torch.manual_seed(0)
    rows = [torch.randn(n, 5) for n in (4, 1, 6)]
    x, mask = _padded(rows, side)
    expected = []
    for r in rows:  # w_i = i / sum_j j over the L real tokens (SGPT, arXiv:2202.08904)
        w = torch.arange(1, len(r) + 1, dtype=torch.float32)
        expected.append((r * (w / w.sum())[:, None]).sum(0))
    torch.testing.assert_close(weighted_mean(x, mask), torch.stack(expected))


@pytest.mark.parametrize("side", ["right", "left"])
def test_poolings_match_sentence_transformers(side):
    """sentence-transformers' ``lasttoken`` and ``weightedmean`` give the same vectors: a saved folder can name them."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer.modules import Pooling

    torch.manual_seed(1)
    x, mask = _padded([torch.randn(n, 5) for n in (3, 7, 2)], side)
    for ours, theirs in ((last_token, "lasttoken"), (weighted_mean, "weightedmean")):
        got = Pooling(5, theirs)({"token_embeddings": x, "attention_mask": mask})["sentence_embedding"]
        torch.testing.assert_close(ours(x, mask), got)


def test_last_token_of_a_right_padded_causal_batch_is_the_unpadded_one():
    """Causal attention: padding after a text changes nothing before it, so last_token is batch-invariant."""
    model = tiny_decoder("llama")
    ids = [[5, 6, 7, 8, 9], [10, 11]]
    x = torch.tensor([ids[0], ids[1] + [0, 0, 0]])
    mask = torch.tensor([[1] * 5, [1, 1, 0, 0, 0]])
    with torch.no_grad():
        batch = last_token(model(input_ids=x, attention_mask=mask).last_hidden_state, mask)
        alone = model(input_ids=torch.tensor([ids[1]])).last_hidden_state[:, -1]
    torch.testing.assert_close(batch[1:], alone, atol=1e-5, rtol=1e-5)


def test_drop_first_token_right_and_left_padding():
    mask = torch.tensor([[1, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]])
    assert drop_first_token(mask).tolist() == [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert mask.tolist()[0] == [1, 1, 1, 0]  # a copy


# ---------------------------------------------------------------------------------------------- bidirectional attention
def _changes(model, ids, perturbed, mask, at: int) -> float:
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=mask).last_hidden_state
        b = model(input_ids=perturbed, attention_mask=mask).last_hidden_state
    return float((a[:, at] - b[:, at]).abs().max())


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("family", FAMILIES)
def test_bidirectional_switch(family, attn):
    """Token 2's output depends on token 6 only while the switch is on; off again, the model is causal again.

    Both without padding (SDPA then gets no mask at all and relies on the module's ``is_causal``) and with it."""
    model = tiny_decoder(family, attn=attn)
    torch.manual_seed(0)
    ids = torch.randint(3, VOCAB, (2, 8))
    later = ids.clone()
    later[:, 6] = (later[:, 6] + 1 - 3) % (VOCAB - 3) + 3
    padded = torch.ones_like(ids)
    padded[1, 7] = 0
    for mask in (None, padded):
        assert _changes(model, ids, later, mask, at=2) == 0.0
        with bidirectional(model):
            assert is_bidirectional(model)
            assert _changes(model, ids, later, mask, at=2) > 1e-4
        assert not is_bidirectional(model)
        assert _changes(model, ids, later, mask, at=2) == 0.0


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_bidirectional_still_masks_padding(family):
    """A padded position's token id never reaches a real token, even with every token attending to every other."""
    model = tiny_decoder(family)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 0, 0]])
    other = ids.clone()
    other[1, 4:] = torch.tensor([40, 41])
    mask = torch.tensor([[1] * 6, [1, 1, 1, 1, 0, 0]])
    with bidirectional(model), torch.no_grad():
        a = model(input_ids=ids, attention_mask=mask).last_hidden_state[1, :4]
        b = model(input_ids=other, attention_mask=mask).last_hidden_state[1, :4]
        alone = model(input_ids=ids[1:, :4]).last_hidden_state[0]
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, alone, atol=1e-5, rtol=1e-5)


def test_enable_is_idempotent_and_nesting_keeps_state():
    model = tiny_decoder("qwen2")
    enable_bidirectional(model)
    enable_bidirectional(model)
    with bidirectional(model):  # already on: left on afterwards
        pass
    assert is_bidirectional(model) and model.config.is_causal is False
    disable_bidirectional(model)
    assert not is_bidirectional(model) and "is_causal" not in model.config.__dict__
    assert all(m.is_causal for m in decoders._attention_modules(model))
    disable_bidirectional(model)  # a no-op


def test_bidirectional_refuses_what_it_cannot_switch():
    from transformers import PretrainedConfig

    with pytest.raises(ValueError, match="no config"):
        enable_bidirectional(torch.nn.Linear(2, 2))
    no_attention = torch.nn.Sequential(torch.nn.Linear(2, 2))
    no_attention.config = PretrainedConfig()
    with pytest.raises(ValueError, match="no attention module with an is_causal flag"):
        enable_bidirectional(no_attention)
    assert not is_bidirectional(no_attention) and "is_causal" not in no_attention.config.__dict__


def test_saved_config_stays_causal(tmp_path):
    """config.json must not carry is_causal=false: plain transformers would apply it to padded batches only."""
    from transformers import AutoModel

    model = tiny_decoder("llama")
    enable_bidirectional(model)
    with decoders.causal_config_for_saving(model):
        model.save_pretrained(tmp_path)
    assert "is_causal" not in json.loads((tmp_path / "config.json").read_text())
    assert model.config.is_causal is False and is_bidirectional(model)  # still on after saving
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert getattr(reloaded.config, "is_causal", True)


# ---------------------------------------------------------------------------------------------- the LM head
@pytest.mark.parametrize("tie", [True, False])
def test_load_lm_head(tmp_path, tie):
    from transformers import AutoModel

    lm = tiny_decoder("llama", causal_lm=True, tie=tie)
    lm.save_pretrained(tmp_path)
    base = AutoModel.from_pretrained(tmp_path)
    weight, tied = decoders.load_lm_head(base)
    assert tied is tie
    torch.testing.assert_close(weight, lm.get_output_embeddings().weight)
    if tie:
        assert weight is base.get_input_embeddings().weight  # shared, not a copy


# ---------------------------------------------------------------------------------------------- per-layer token states
def test_layer_token_states_and_anisotropy():
    model, tok = tiny_decoder("gpt2"), tiny_tokenizer()
    texts = ["the man plays music", "a dog sat", "the old car on the road", "happy day"]
    layers, owner = decoders.layer_token_states(model, tok, texts, batch_size=3)
    n_tokens = sum(len(t.split()) for t in texts)
    assert len(layers) == model.config.n_layer + 1 and all(x.shape == (n_tokens, 32) for x in layers)
    assert owner.tolist() == [i for i, t in enumerate(texts) for _ in t.split()]
    without, owner2 = decoders.layer_token_states(model, tok, texts, drop_first=True)
    assert len(owner2) == n_tokens - len(texts)
    stats = decoders.token_anisotropy(model, tok, texts, n_pairs=50)
    assert set(stats) == {"all_tokens", "without_first"}
    assert all(len(v) == 3 and all(-1 <= c <= 1 for c in v) for v in stats.values())


@pytest.mark.parametrize("family", ["gpt2", "llama", "gemma"])
def test_set_attention_dropout(family):
    model = tiny_decoder(family)
    assert decoders.set_attention_dropout(model, 0.3) == 2  # one attention module per layer
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).last_hidden_state, model(input_ids=ids).last_hidden_state)  # eval
        model.train()
        a, b = model(input_ids=ids).last_hidden_state, model(input_ids=ids).last_hidden_state
    assert (a - b).abs().max() > 1e-4
    with pytest.raises(ValueError):
        decoders.set_attention_dropout(model, 1.0)
