import random

from decone.augment import column_views, dropout_views, span_mask, span_masked_views


def test_span_mask_replaces_k_characters_with_the_mask_token():
    rng = random.Random(0)
    text = "the cat sat on the mat"
    out = span_mask(text, 5, "<mask>", rng)
    assert "<mask>" in out
    assert len(out) == len(text) - 5 + len("<mask>")
    start = out.index("<mask>")
    assert out[:start] == text[:start] and out[start + 6:] == text[start + 5:]


def test_short_strings_are_left_alone():
    assert span_mask("cat", 5, "[MASK]", random.Random(0)) == "cat"
    assert span_mask("fives", 5, "[MASK]", random.Random(0)) == "fives"


def test_span_masked_views_use_tokenizer_mask_token_and_differ(tiny_encoder):
    mask = tiny_encoder.tokenizer.mask_token
    batch = [("the cat sat on the mat",), ("a dog ran in the city",)]
    v1, v2 = span_masked_views(5, mask)(batch, random.Random(1))
    assert v1 == [b[0] for b in batch]
    assert all(mask in t for t in v2) and v1 != v2
    # the masked view tokenises to the mask token id
    ids = tiny_encoder.tokenizer(v2[0])["input_ids"]
    assert tiny_encoder.tokenizer.mask_token_id in ids


def test_span_masking_is_reproducible_from_the_seed():
    batch = [("the cat sat on the mat",)] * 3
    a = span_masked_views(5, "[MASK]")(batch, random.Random(3))
    b = span_masked_views(5, "[MASK]")(batch, random.Random(3))
    assert a == b


def test_dropout_and_column_views():
    batch = [("a", "b", "c"), ("d", "e", "f")]
    assert dropout_views(2)(batch, random.Random(0)) == [["a", "d"], ["a", "d"]]
    assert column_views()(batch, random.Random(0)) == [["a", "d"], ["b", "e"], ["c", "f"]]


def test_span_mask_leaves_texts_under_min_chars_whole():
    rng = random.Random(0)
    short, long = "a dog ran to the park", "a dog ran along the river to the sea"  # 21 and 36 characters
    assert span_mask(short, 5, "[MASK]", rng, min_chars=30) == short
    assert span_mask(long, 5, "[MASK]", rng, min_chars=30).count("[MASK]") == 1
    assert span_mask(short, 5, "[MASK]", rng).count("[MASK]") == 1  # no minimum: masked
