"""Mirror-BERT, word level: the paper's defaults (T = 0.2, 25 tokens, 2 epochs), the word twice as the views
(dropout makes them differ), the wordfreq top 10k as the default data, and a run on a word list."""

from __future__ import annotations

import math
import random

from decone.methods import get_method
from decone.train import TrainConfig, fit
from tests.methods.helpers import trained_folder_round_trip


def test_paper_defaults_and_citation():
    m = get_method("mirror-word")
    assert (m.defaults["temperature"], m.defaults["max_length"], m.defaults["epochs"]) == (0.2, 25, 2)
    assert (m.defaults["head"], m.defaults["batch_size"]) == ("none", 200)
    assert "arXiv:2104.08027" in m.citation and m.data == "words"
    from decone.objectives import NTXent

    objective = m.objective(TrainConfig(method="mirror-word", model="unused").resolved())
    assert isinstance(objective, NTXent) and objective.temperature == 0.2


def test_views_are_the_word_twice(tiny_model_dir):
    cfg = TrainConfig(method="mirror-word", model=str(tiny_model_dir)).resolved()
    v = get_method("mirror-word").views(cfg, None)([("house",), ("river",)], random.Random(0))
    assert v == [["house", "river"], ["house", "river"]]


def test_the_default_data_is_the_10k_most_frequent_english_words():
    from decone.data import default_words

    words = default_words()
    assert len(words) == 10_000 and words.source == "wordfreq:en:top10000"
    first = [row[0] for row in words.examples[:5]]
    assert "the" in first and len({row[0] for row in words.examples}) == 10_000


def test_trains_on_a_word_list(tiny_model_dir, tmp_path):
    data = tmp_path / "words.txt"
    data.write_text("\n".join("cat dog house river tree car road city music song book school".split()) + "\n")
    out = tmp_path / "mw"
    summary = fit(TrainConfig(method="mirror-word", model=str(tiny_model_dir), data=str(data), output=str(out),
                              max_steps=2, batch_size=6, bf16=False, lr=1e-3))
    assert summary["steps"] == 2 and math.isfinite(summary["final_loss"])
    assert trained_folder_round_trip(out) < 1e-5
