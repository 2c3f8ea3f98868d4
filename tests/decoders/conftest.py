"""Tiny random decoders of each family (2 layers, hidden 32), built from their configs: no download, milliseconds."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FAMILIES = ("gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma")
VOCAB = 64
WORDS = ("the a man woman child dog cat plays runs sat on mat red blue big small old new good bad movie film great "
         "sad happy day night city car road house tree water music song book school").split()


def tiny_config(family: str, vocab_size: int = VOCAB, tie: bool | None = None):
    """A 2-layer, hidden-32 config of ``family`` (GQA with 2 key-value heads where the family has it)."""
    from transformers import GemmaConfig, GPT2Config, LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config

    extra = {} if tie is None else {"tie_word_embeddings": tie}
    if family == "gpt2":
        return GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=0,
                          eos_token_id=0, **extra)
    common = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64, bos_token_id=0,
                  eos_token_id=0, pad_token_id=None, **extra)
    if family == "llama":
        return LlamaConfig(**common)
    if family == "mistral":
        return MistralConfig(**common, sliding_window=4)  # a window shorter than the test sequences
    if family == "qwen2":
        return Qwen2Config(**common)
    if family == "qwen3":
        return Qwen3Config(**common, head_dim=8)
    if family == "gemma":
        return GemmaConfig(**common, head_dim=8)
    raise ValueError(family)


def tiny_decoder(family: str, seed: int = 0, attn: str = "sdpa", causal_lm: bool = False, **kwargs):
    """A randomly initialised base model (``AutoModel``) or causal LM of ``family``, in eval mode."""
    from transformers import AutoModel, AutoModelForCausalLM

    torch.manual_seed(seed)
    cls = AutoModelForCausalLM if causal_lm else AutoModel
    return cls.from_config(tiny_config(family, **kwargs), attn_implementation=attn).eval()


def tiny_tokenizer(with_pad: bool = False):
    """A word-level tokenizer like GPT-2's in what matters here: an eos token, no padding and no mask token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<|endoftext|>", "<unk>", "_", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   unk_token="<unk>", model_max_length=64)
    if with_pad:
        fast.pad_token = fast.eos_token
    assert len(fast) <= VOCAB
    return fast


@pytest.fixture(scope="session")
def gpt_mini():
    """The shared GPT-2-architecture stand-in (../shared/models/decone-raw-gpt-mini) and the STS-B test file."""
    from decone.paths import shared_dir

    root = shared_dir()
    if root is None:
        pytest.skip("../shared not found (set DECONE_SHARED): the real-decoder diagnostics need decone-raw-gpt-mini")
    model = root / "models" / "decone-raw-gpt-mini"
    stsb = root / "data" / "sts" / "STSBenchmark" / "sts-test.csv"
    if not model.is_dir() or not stsb.is_file():
        pytest.skip(f"{model} or {stsb} is absent: the real-decoder diagnostics need both")
    return model, stsb
