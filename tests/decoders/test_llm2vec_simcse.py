"""LLM2Vec's SimCSE step for decoders (``llm2vec-simcse``): the paper's defaults, the decoder readied (LoRA,
bidirectional attention, attention dropout 0.3 so the two dropout views differ), and an encoder refused."""

from __future__ import annotations

import pytest
import torch

from decone.decoders import is_bidirectional
from decone.errors import ConfigError
from decone.lora import is_lora
from decone.methods import get_method
from tests.decoders.conftest import tiny_decoder, tiny_tokenizer
from tests.decoders.test_mntp import TEXTS, _trainable


def test_llm2vec_simcse_registered_and_readies_the_decoder():
    """LLM2Vec's SimCSE step: LoRA, bidirectional, attention dropout 0.3 so the two dropout views differ."""
    from decone.encoder.pooling import masked_mean
    from decone.methods.llm2vec_simcse import DecoderInfoNCE, LLM2VecOptions

    method = get_method("llm2vec-simcse")
    assert method.defaults["temperature"] == 0.05 and method.defaults["batch_size"] == 128
    assert method.options().attention_dropout == 0.3
    hf, tok = tiny_decoder("llama"), tiny_tokenizer()
    objective = DecoderInfoNCE(0.05, LLM2VecOptions(lora_r=4))
    model = _trainable(hf, tok)
    objective.setup(model)
    enc = model.encoder.model
    assert is_lora(enc) and is_bidirectional(enc) and tok.pad_token is not None
    batch = tok(TEXTS[:4], padding=True, return_tensors="pt")
    enc.train()
    views = [masked_mean(enc(**batch).last_hidden_state, batch["attention_mask"]) for _ in range(2)]
    assert (views[0] - views[1]).abs().max() > 1e-4  # attention dropout: two views of a sentence differ
    loss = objective.loss_from_embeddings(views)
    assert torch.isfinite(loss)


def test_an_encoder_is_refused_naming_simcse(tiny_model_dir):
    from decone.encoder import Encoder
    from decone.methods.llm2vec_simcse import DecoderInfoNCE

    enc = Encoder.load(tiny_model_dir, device="cpu")
    with pytest.raises(ConfigError, match="llm2vec-simcse: 'bert' is not a decoder \\(use simcse for encoders\\)"):
        DecoderInfoNCE(0.05).setup(_trainable(enc.model, enc.tokenizer))
    assert "arXiv:2404.05961" in get_method("llm2vec-simcse").citation
