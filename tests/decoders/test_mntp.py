"""MNTP (LLM2Vec step 2) on tiny random decoders: masking, the shifted prediction, the head, one step of training."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from decone.decoders import is_bidirectional
from decone.errors import ConfigError
from decone.lora import is_lora
from decone.methods import get_method
from decone.methods.mntp import MNTP, MNTPOptions, choose_masked, corrupt, mntp_loss
from tests.decoders.conftest import WORDS, tiny_decoder, tiny_tokenizer

TEXTS = [" ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(5 + i % 6)) for i in range(16)]


def _trainable(hf, tok, max_length: int = 32):
    """What an objective sees of decone's Trainable: ``encoder.model``, ``encoder.tokenizer``, ``max_length``."""
    return SimpleNamespace(encoder=SimpleNamespace(model=hf, tokenizer=tok, max_length=max_length), max_length=max_length)


def test_registered_with_the_paper_defaults():
    method = get_method("mntp")
    assert method.data == "sentences" and "2404.05961" in method.citation
    assert method.defaults["lr"] == 5e-5 and method.defaults["batch_size"] == 32
    assert method.defaults["max_steps"] == 1000 and method.defaults["max_length"] == 512
    opts = method.options()
    assert (opts.mask_ratio, opts.lora_r, opts.lora_alpha, opts.lora_dropout) == (0.2, 16, 32.0, 0.05)
    with pytest.raises(ConfigError, match="mask_ratio"):
        MNTPOptions(mask_ratio=1.0).validate()


def test_choose_masked_skips_first_padding_and_specials():
    torch.manual_seed(0)
    ids = torch.randint(3, 60, (64, 40))
    ids[:, 5] = 2  # a "special" id
    mask = torch.ones_like(ids)
    mask[::2, 30:] = 0
    chosen = choose_masked(ids, mask, 0.2, special_ids={2})
    assert not chosen[:, 0].any() and not chosen[:, 5].any() and not chosen[::2, 30:].any()
    share = chosen.sum() / (mask.sum() - 2 * len(ids))
    assert 0.17 < float(share) < 0.23
    one = choose_masked(ids[:1, :3], mask[:1, :3], 1e-9)  # nothing drawn: one token all the same
    assert int(one.sum()) == 1 and not one[0, 0]


def test_corrupt_is_80_10_10():
    torch.manual_seed(0)
    ids = torch.randint(3, 60, (200, 50))
    chosen = torch.rand(ids.shape) < 0.5
    out = corrupt(ids, chosen, mask_id=1, vocab_size=64)
    assert torch.equal(out[~chosen], ids[~chosen])
    masked = float((out[chosen] == 1).float().mean())
    kept = float((out[chosen] == ids[chosen]).float().mean())
    assert 0.77 < masked < 0.83 and 0.08 < kept < 0.13  # kept: the 10% kept plus random draws of the same id


def test_loss_predicts_each_token_from_the_previous_position():
    """A head that reads position i-1's one-hot 'next id' gets ~0 loss; reading position i itself would not."""
    vocab, t = 10, 6
    targets = torch.tensor([[3, 4, 5, 6, 7, 8]])
    hidden = torch.zeros(1, t, vocab)
    hidden[0, torch.arange(t - 1), targets[0, 1:]] = 50.0  # state i "says" token i+1
    chosen = torch.tensor([[False, True, False, True, True, False]])
    head = torch.eye(vocab)
    assert float(mntp_loss(hidden, targets, chosen, head)) < 1e-6
    unshifted = torch.zeros(1, t, vocab)
    unshifted[0, torch.arange(t), targets[0]] = 50.0  # state i "says" its own token: the wrong alignment
    assert float(mntp_loss(unshifted, targets, chosen, head)) > 10


def test_gemma_softcapping_is_applied_to_the_logits():
    """Gemma 2/3 cap their final logits at 30 * tanh(x / 30): the MNTP loss is the cross-entropy of the capped
    logits (a hand-written reference), and the cap is read from the family's config."""
    from transformers import Gemma2Config, LlamaConfig

    from decone.methods.mntp import logit_softcap

    torch.manual_seed(0)
    hidden, head = torch.randn(2, 5, 8) * 20, torch.randn(11, 8)
    targets = torch.randint(11, (2, 5))
    chosen = torch.tensor([[False, True, True, False, True], [False, False, True, True, True]])
    rows, cols = chosen.nonzero(as_tuple=True)
    logits = hidden[rows, cols - 1] @ head.T
    capped = 30.0 * torch.tanh(logits / 30.0)
    want = torch.nn.functional.cross_entropy(capped, targets[rows, cols])
    assert abs(float(mntp_loss(hidden, targets, chosen, head, softcap=30.0)) - float(want)) < 1e-5
    assert abs(float(mntp_loss(hidden, targets, chosen, head)) - float(want)) > 1e-2  # the cap matters here
    assert logit_softcap(Gemma2Config()) == 30.0 and logit_softcap(LlamaConfig()) is None


@pytest.mark.parametrize("spare_rows", [True, False])
def test_setup_adds_a_mask_token_pads_and_goes_bidirectional(capsys, spare_rows):
    tok = tiny_tokenizer()
    hf = tiny_decoder("gpt2", vocab_size=64 if spare_rows else len(tok))
    rows = hf.get_input_embeddings().weight.shape[0]
    objective = MNTP(MNTPOptions(lora_r=0))
    model = _trainable(hf, tok)
    objective.setup(model)
    assert tok.pad_token == tok.eos_token and tok.mask_token == "<mask>"
    assert objective.mask_id == len(tok) - 1
    grown = model.encoder.model.get_input_embeddings().weight.shape[0]
    assert grown == (rows if spare_rows else rows + 1)  # resized only where no row is free, never shrunk
    assert is_bidirectional(model.encoder.model)
    assert objective.lm_head is None  # GPT-2 ties: the head IS the input embedding
    assert objective.head_weight(hf) is hf.get_input_embeddings().weight
    err = capsys.readouterr().err
    assert "added '<mask>'" in err and "padding with its eos token" in err
    assert ("spare row" in err) is spare_rows and ("resized" in err) is not spare_rows


def test_existing_token_as_mask_needs_no_resize():
    hf, tok = tiny_decoder("gpt2"), tiny_tokenizer()
    rows = hf.get_input_embeddings().weight.shape[0]
    objective = MNTP(MNTPOptions(lora_r=0, mask_token="_"))
    objective.setup(_trainable(hf, tok))
    assert objective.mask_id == tok.convert_tokens_to_ids("_") and hf.get_input_embeddings().weight.shape[0] == rows


@pytest.mark.parametrize("spare_rows", [True, False])
def test_untied_head_is_read_from_the_checkpoint(tmp_path, spare_rows):
    from transformers import AutoModel

    tok = tiny_tokenizer()
    lm = tiny_decoder("llama", causal_lm=True, tie=False, vocab_size=64 if spare_rows else len(tok))
    lm.save_pretrained(tmp_path)
    objective = MNTP(MNTPOptions(lora_r=4))
    model = _trainable(AutoModel.from_pretrained(tmp_path), tok)
    objective.setup(model)
    head = lm.get_output_embeddings().weight
    rows = head.shape[0]
    torch.testing.assert_close(objective.lm_head.weight[:rows], head)
    if not spare_rows:  # the added <mask> row of the head: the mean of the others
        assert objective.lm_head.weight.shape[0] == rows + 1
        torch.testing.assert_close(objective.lm_head.weight[rows], head.mean(dim=0))
    assert objective.lm_head.weight.requires_grad  # trained alongside, as in LLM2Vec
    assert is_lora(model.encoder.model) and is_bidirectional(model.encoder.model)


def _one_step(objective, model, lr: float) -> tuple[float, float]:
    params = [p for p in list(model.encoder.model.parameters()) + list(objective.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    model.encoder.model.eval()  # no dropout: the two losses differ by the step alone
    torch.manual_seed(123)
    before = objective.loss(model, [TEXTS], None, False)
    before.backward()
    optimizer.step()
    optimizer.zero_grad()
    with torch.no_grad():
        torch.manual_seed(123)  # the same tokens chosen and corrupted
        after = objective.loss(model, [TEXTS], None, False)
    return float(before.detach()), float(after)


@pytest.mark.parametrize("family,lora_r", [("gpt2", 0), ("gpt2", 8), ("llama", 0), ("llama", 8)])
def test_one_step_lowers_the_mntp_loss(tmp_path, family, lora_r):
    from transformers import AutoModel

    lm = tiny_decoder(family, causal_lm=True, tie=family == "gpt2")
    lm.save_pretrained(tmp_path)  # Llama unties its head: MNTP reads it from the folder
    objective = MNTP(MNTPOptions(lora_r=lora_r))
    model = _trainable(AutoModel.from_pretrained(tmp_path), tiny_tokenizer())
    objective.setup(model)
    if lora_r:
        frozen = [n for n, p in model.encoder.model.named_parameters() if p.requires_grad and "lora_" not in n]
        assert frozen == []
    before, after = _one_step(objective, model, lr=1e-2 if lora_r else 1e-3)
    assert after < before - 1e-3, (before, after)
