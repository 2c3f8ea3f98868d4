"""Word similarity: reader, encode-once, coverage, averages."""

from __future__ import annotations

import numpy as np
import pytest

from decone.errors import ConfigError, DataError
from decone.evaluate import words


def test_reader_lowercases_and_skips_blank_lines(tmp_path):
    path = tmp_path / "EN-X.txt"
    path.write_text("Tiger\tcat\t7.35\n\nold new 1.58\n")
    assert words.read_word_pairs(path) == [("tiger", "cat", 7.35), ("old", "new", 1.58)]


def test_reader_errors_name_file_and_line(tmp_path):
    path = tmp_path / "EN-X.txt"
    path.write_text("a b 1\nc d\n")
    with pytest.raises(DataError, match=r"EN-X.txt:2: expected 'word1 word2 score'"):
        words.read_word_pairs(path)
    path.write_text("a b 1\nc d inf\n")
    with pytest.raises(DataError, match=r"EN-X.txt:2: score 'inf' is not finite"):
        words.read_word_pairs(path)


def test_evaluate_words_on_synthetic_sets(mini_data, hash_encoder):
    res = words.evaluate_words(hash_encoder, mini_data)
    assert list(res["sets"]) == list(words.WORD_SETS)
    assert len(hash_encoder.calls) == 1 and len(hash_encoder.calls[0]) == res["words"]
    assert res["avg"] == pytest.approx(np.mean([r["spearman"] for r in res["sets"].values()]))
    assert res["coverage"] == 100.0  # a stub without a tokenizer cannot be checked: counted as covered


def test_coverage_counts_unknown_only_words(tiny_encoder, hash_encoder, tmp_path):
    data = {"X": [("cat", "dog", 1.0), ("cat", "\u65e5\u672c", 2.0), ("dog", "mat", 3.0), ("red", "blue", 0.5)]}
    res = words.evaluate_words(tiny_encoder, data=data)
    assert res["sets"]["X"]["coverage"] == pytest.approx(75.0)  # the CJK word is only [UNK] in the tiny vocabulary


def test_set_names():
    assert words.resolve_sets(["simlex-999", "MEN"]) == ("SimLex-999", "MEN-3k")
    with pytest.raises(ConfigError):
        words.resolve_sets(["nope"])


def test_shared_word_sets_read(shared):
    data = words.load_words(shared / "data")
    assert len(data["SimLex-999"]) == 999 and len(data["WS-353-ALL"]) == 353 and len(data["MEN-3k"]) == 3000
    assert all(len(p) > 0 for p in data.values())
