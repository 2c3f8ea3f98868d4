"""Mirror-BERT (sentences): the registry's paper defaults, two views of which only the second has one span masked
with the tokenizer's mask token, and a clear one-line error where the tokenizer has none (a decoder)."""

from __future__ import annotations

import random

import pytest

from decone.errors import ConfigError
from decone.methods import get_method
from decone.train import TrainConfig
from tests._cli import run_cli


def test_paper_defaults_and_citation():
    m = get_method("mirror")
    assert (m.defaults["temperature"], m.defaults["mask_span"], m.defaults["head"]) == (0.04, 5, "none")
    assert "arXiv:2104.08027" in m.citation and m.data == "sentences"


def test_the_objective_is_nt_xent_over_both_views():
    """As the authors' code: pytorch-metric-learning's NTXentLoss over the 2B embeddings of both views."""
    import torch

    from decone.objectives import NTXent, nt_xent

    cfg = TrainConfig(method="mirror", model="unused").resolved()
    objective = get_method("mirror").objective(cfg)
    assert isinstance(objective, NTXent) and objective.temperature == 0.04
    torch.manual_seed(0)
    a, b = torch.randn(6, 8), torch.randn(6, 8)
    assert torch.equal(objective([a, b]), nt_xent(a, b, 0.04))


def test_views_are_the_text_and_the_text_with_one_span_masked(tiny_model_dir):
    from decone.encoder import Encoder

    tok = Encoder.load(tiny_model_dir, device="cpu").tokenizer
    cfg = TrainConfig(method="mirror", model=str(tiny_model_dir)).resolved()
    views = get_method("mirror").views(cfg, tok)
    batch = [("the cat sat on the mat by the door",), ("a dog ran along the river to the sea",),
             ("a dog ran to the park",), ("hi",)]
    plain, masked = views(batch, random.Random(0))
    assert plain == [row[0] for row in batch]
    for text, view in zip(plain[:2], masked[:2]):
        assert view.count(tok.mask_token) == 1
        start = view.index(tok.mask_token)
        # the view is the text with exactly mask_span characters replaced by the mask token
        assert view[:start] + text[start:start + 5] + view[start + len(tok.mask_token):] == text
    assert masked[2] == plain[2]  # under 30 characters: left whole, as the authors' code does
    assert masked[3] == "hi"


def test_a_tokenizer_without_mask_token_is_a_one_line_error(tmp_path):
    from tests.decoders.conftest import tiny_decoder, tiny_tokenizer

    folder = tmp_path / "gpt"
    tiny_decoder("gpt2", causal_lm=True).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    data = tmp_path / "sents.txt"
    data.write_text("the man plays music\nthe dog sat on a mat\na big red car\nthe old house\n")
    tok = tiny_tokenizer()
    assert tok.mask_token is None
    with pytest.raises(ConfigError, match="mirror: the tokenizer has no mask token"):
        get_method("mirror").views(TrainConfig(method="mirror", model=str(folder)).resolved(), tok)
    out = tmp_path / "run"
    code, text = run_cli(["train", "mirror", "--model", str(folder), "--data", str(data), "--output", str(out),
                          "--max-steps", "1", "--batch-size", "2"])
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in text and len(errors) == 1, text
    assert "mirror: the tokenizer has no mask token" in errors[0]
    assert not out.exists() or not any(out.iterdir())  # nothing half-written
