"""Token-level metrics on a tiny hand-made example, and collecting word vectors from a tiny encoder."""

from __future__ import annotations

import math

import numpy as np
import pytest

from decone.diagnostics import collect
from decone.diagnostics.tokens import FUNCTION_WORDS, WordStates, token_metrics

E1, E2, E3 = np.eye(3)
PUNCT = np.array([-1.0, -1.0, -1.0])


@pytest.fixture()
def hand_made() -> WordStates:
    """Three sentences: "the cat .", "the dog", "a cat".

    Layer 0: each word type has one fixed vector (the = a = e1, cat = e2, dog = e3): no contextualisation.
    Layer 1: every word takes its sentence's direction (s0 -> e1, s1 -> e2, s2 -> e3): all context, no word identity.
    The "." must be ignored everywhere.
    """
    words = ["the", "cat", ".", "the", "dog", "a", "cat"]
    sids = [0, 0, 0, 1, 1, 2, 2]
    layer0 = [E1, E2, PUNCT, E1, E3, E1, E2]
    layer1 = [E1, E1, PUNCT, E2, E2, E3, E3]
    return WordStates(np.array([layer0, layer1]), words, np.array(sids))


def test_hand_made_layer0(hand_made):
    row = token_metrics(hand_made, n_pairs=1000)[0]
    # cross-sentence word pairs: s0-s1 1/4, s0-s2 2/4, s1-s2 1/4 of pairs identical, the rest orthogonal -> 4/12
    assert row["baseline"] == pytest.approx(1 / 3)
    assert row["self_similarity"] == pytest.approx(1.0)  # "the" and "cat" keep their vector
    assert row["self_similarity_function"] == pytest.approx(1.0)
    assert row["self_similarity_content"] == pytest.approx(1.0)
    assert row["self_similarity_adj"] == pytest.approx(2 / 3)
    # two orthogonal unit words per sentence: each at 45 degrees to the mean
    assert row["intra_similarity"] == pytest.approx(1 / math.sqrt(2))
    assert row["intra_similarity_function"] == pytest.approx(1 / math.sqrt(2))
    assert row["intra_similarity_content"] == pytest.approx(1 / math.sqrt(2))
    assert row["intra_similarity_adj"] == pytest.approx(1 / math.sqrt(2) - 1 / 3)
    assert (row["n_types_function"], row["n_types_content"], row["n_words"], row["n_sentences"]) == (1, 1, 6, 3)


def test_hand_made_layer1(hand_made):
    row = token_metrics(hand_made, n_pairs=1000)[1]
    assert row["layer"] == 1
    assert row["baseline"] == pytest.approx(0.0)
    assert row["self_similarity"] == pytest.approx(0.0)  # "the" in s0 vs s1 and "cat" in s0 vs s2: orthogonal
    assert row["intra_similarity"] == pytest.approx(1.0)  # words collapse onto their sentence
    assert row["intra_similarity_function"] == pytest.approx(1.0)
    assert row["intra_similarity_content_adj"] == pytest.approx(1.0)


def test_custom_function_words(hand_made):
    row = token_metrics(hand_made, function_words={"cat"})[0]
    assert (row["n_types_function"], row["n_types_content"]) == (1, 1)
    rows = token_metrics(hand_made, function_words=())
    assert rows[0]["n_types_function"] == 0 and math.isnan(rows[0]["self_similarity_function"])


def test_function_word_list():
    assert {"the", "a", "of", "and", "is", "to", "not"} <= FUNCTION_WORDS
    assert not {"fire", "bill", "system", "cat", "man"} & FUNCTION_WORDS


def test_word_states_from_encoder(tiny_encoder):
    sentences = ["the cat sat on the mat.", "a dog ran fast", "the man read a book", "zzz"]
    tiny_encoder.train()
    states = collect.word_states(tiny_encoder, sentences, batch_size=3)
    assert tiny_encoder.training  # restored
    n_layers = tiny_encoder.model.config.num_hidden_layers + 1
    assert states.vectors.shape[0] == n_layers and states.vectors.shape[2] == 32
    assert states.words[:7] == ["the", "cat", "sat", "on", "the", "mat", "."]
    assert "zzz" in states.words  # "zzz" is three word pieces merged into one word
    assert states.words.count("zzz") == 1
    assert states.sentence_ids.tolist()[:7] == [0] * 7
    # a word of several pieces is the mean of its pieces' vectors
    import torch

    tiny_encoder.eval()
    with torch.no_grad():
        hs = tiny_encoder(tiny_encoder.tokenize(["zzz"]), output_hidden_states=True)["hidden_states"]
    assert hs[-1].shape[1] == 5  # [CLS] z ##z ##z [SEP]
    expected = hs[-1][0, 1:-1].mean(dim=0).numpy()
    np.testing.assert_allclose(states.vectors[-1, states.words.index("zzz")], expected, atol=1e-5)
    rows = token_metrics(states)
    assert [r["layer"] for r in rows] == list(range(n_layers))
    assert all(-1.0 <= r["baseline"] <= 1.0 for r in rows)


def test_output_and_layers_match_encode(tiny_encoder):
    sentences = ["the cat sat", "a dog", "one two three four five", "red"] * 3
    out, layers = collect.output_and_layers(tiny_encoder, sentences, batch_size=5)
    np.testing.assert_allclose(out, tiny_encoder.encode(sentences), atol=1e-5)
    np.testing.assert_allclose(layers, collect.layer_embeddings(tiny_encoder, sentences), atol=1e-5)


def _byte_level_tokenizer(words):
    """A GPT-2-like fast tokenizer: byte-level pre-tokenisation, offsets not trimmed (the space before a word is
    part of its token and of its offsets)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<|endoftext|>": 0, "<unk>": 1}
    for w in words:
        for form in (w, "\u0120" + w):
            vocab.setdefault(form, len(vocab))
    for k in range(len(vocab), 64):  # as many tokens as the tiny model's embedding rows
        vocab[f"filler{k}"] = k
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", unk_token="<unk>",
                                   pad_token="<|endoftext|>")


def test_byte_level_bpe_words_are_typed_without_their_leading_space(tmp_path):
    """GPT-2's offsets keep the space before each word: " the" must still be the function word "the", one type with
    the sentence-opening "The"."""
    from decone.encoder import Encoder
    from tests.decoders.conftest import tiny_decoder

    words = ["The", "the", "cat", "sat", "on", "mat", "and", "it", "was", "in", "house", "."]
    folder = tmp_path / "gpt"
    tiny_decoder("gpt2").save_pretrained(folder)
    _byte_level_tokenizer(words).save_pretrained(folder)
    enc = Encoder.load(folder, pooling="mean", device="cpu")
    assert enc.tokenizer.is_fast and enc.tokenizer.tokenize(" the") == ["\u0120the"]
    states = collect.word_states(enc, ["The cat sat on the mat.", "it was in the house and the cat sat"], batch_size=2)
    assert states.words[:7] == ["the", "cat", "sat", "on", "the", "mat", "."]  # types: lower-cased, no space
    function = [w for w in states.words if w in FUNCTION_WORDS]
    assert function == ["the", "on", "the", "it", "was", "in", "the", "and", "the"]


def test_a_word_sampled_from_one_sentence_only_still_has_a_self_similarity():
    """A type capped at max_occurrences keeps occurrences from 2 sentences: its self-similarity is never empty."""
    from decone.diagnostics.tokens import _type_groups

    sentence_ids = np.array([0] * 25 + [1])
    keep = np.ones(26, dtype=bool)
    for seed in range(30):
        groups = _type_groups(["w"] * 26, sentence_ids, keep, max_occurrences=20, seed=seed)
        assert len(groups["w"]) == 20 and len(np.unique(sentence_ids[groups["w"]])) == 2
