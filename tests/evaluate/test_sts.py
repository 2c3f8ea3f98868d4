"""STS: readers, the all / mean / wmean aggregation maths, encode-once, errors, counts on the shared data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from decone.errors import ConfigError, DataError
from decone.evaluate import sts


# ---------------------------------------------------------------------- aggregation, checked by hand
def test_aggregation_all_mean_wmean_by_hand():
    """Subset A (3 pairs) agrees perfectly, subset B (5 pairs) is perfectly reversed.

    mean  = (100 + -100) / 2                  = 0
    wmean = (3 * 100 + 5 * -100) / 8          = -25
    all   : system ranks 1..8 (the system scores increase throughout); gold [1, 2, 3, 5, 4, 3, 2, 1] has ranks
            [1.5, 3.5, 5.5, 8, 7, 5.5, 3.5, 1.5] (ties averaged). Both rank vectors have mean 4.5;
            sum(dx * dy) = 10.5 + 2.5 - 1.5 - 1.75 + 1.25 + 1.5 - 2.5 - 10.5 = -0.5,
            sum(dx^2) = 42, sum(dy^2) = 40.5, so rho = -0.5 / sqrt(42 * 40.5) = -0.0121232...; x100 = -1.21232
    """
    subsets = {
        "A": (np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0])),
        "B": (np.array([0.5, 0.6, 0.7, 0.8, 0.9]), np.array([5.0, 4.0, 3.0, 2.0, 1.0])),
    }
    res = sts.aggregate(subsets)
    assert res["n"] == 8
    assert res["subsets"]["A"] == {"n": 3, "spearman": pytest.approx(100.0), "pearson": pytest.approx(100.0)}
    assert res["subsets"]["B"]["spearman"] == pytest.approx(-100.0)
    assert res["spearman"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert res["spearman"]["wmean"] == pytest.approx(-25.0)
    assert res["spearman"]["all"] == pytest.approx(-0.5 / math.sqrt(42 * 40.5) * 100, abs=1e-9)
    assert res["spearman"]["all"] == pytest.approx(-1.21232, abs=1e-4)
    # Pearson per subset is +-1 here too (exactly linear), so its mean and wmean match Spearman's
    assert res["pearson"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert res["pearson"]["wmean"] == pytest.approx(-25.0)
    # the three aggregations really differ
    assert len({round(res["spearman"][a], 6) for a in sts.AGGREGATIONS}) == 3


def test_single_subset_aggregations_coincide():
    res = sts.aggregate({"test": (np.array([0.1, 0.5, 0.3, 0.9]), np.array([1.0, 3.0, 2.5, 4.0]))})
    assert res["spearman"]["all"] == res["spearman"]["mean"] == pytest.approx(res["spearman"]["wmean"])
    assert res["spearman"]["all"] == pytest.approx(100.0)


def test_constant_predictions_give_nan_not_crash():
    res = sts.aggregate({"x": (np.zeros(4), np.array([1.0, 2.0, 3.0, 4.0]))})
    assert math.isnan(res["spearman"]["all"])


# ---------------------------------------------------------------------- readers
def test_empty_gold_lines_are_dropped_and_whitespace_normalised(tmp_path):
    inp, gs = tmp_path / "STS.input.x.txt", tmp_path / "STS.gs.x.txt"
    inp.write_text("a  cat\tthe   dog \nb\tc\nd\te\n")
    gs.write_text("4.0\n\n0\n")
    assert sts.read_sts_subset(inp, gs) == [("a cat", "the dog", 4.0), ("d", "e", 0.0)]


@pytest.mark.parametrize("gold, problem", [("abc", "not a number"), ("nan", "not finite"), ("5.5", "outside [0, 5]"),
                                           ("-0.1", "outside [0, 5]")])
def test_bad_gold_names_file_and_line(tmp_path, gold, problem):
    inp, gs = tmp_path / "STS.input.x.txt", tmp_path / "STS.gs.x.txt"
    inp.write_text("a\tb\nc\td\ne\tf\n")
    gs.write_text(f"1.0\n\n{gold}\n")
    with pytest.raises(DataError) as err:
        sts.read_sts_subset(inp, gs)
    msg = str(err.value)
    assert f"{gs}:3" in msg and problem in msg and "\n" not in msg


def test_line_count_mismatch(tmp_path):
    inp, gs = tmp_path / "STS.input.x.txt", tmp_path / "STS.gs.x.txt"
    inp.write_text("a\tb\nc\td\n")
    gs.write_text("1.0\n")
    with pytest.raises(DataError, match="1 gold lines for 2 sentence pairs"):
        sts.read_sts_subset(inp, gs)


def test_input_line_without_tab(tmp_path):
    inp, gs = tmp_path / "STS.input.x.txt", tmp_path / "STS.gs.x.txt"
    inp.write_text("a\tb\nonly one sentence\n")
    gs.write_text("1.0\n2.0\n")
    with pytest.raises(DataError, match=rf"{inp.name}:2: expected two tab-separated"):
        sts.read_sts_subset(inp, gs)


def test_read_sts_benchmark_and_errors(tmp_path):
    path = tmp_path / "sts-dev.csv"
    path.write_text("g\tf\t2012\t0001\t2.500\tA  girl.\tA boy.\textra\tsource\n"
                    "g\tf\t2012\t0002\t0\tx\ty\n")
    assert sts.read_sts_benchmark(path) == [("A girl.", "A boy.", 2.5), ("x", "y", 0.0)]
    path.write_text("g\tf\t2012\t0001\t2.5\ta\tb\ng\tf\t2012\t0002\t7\ta\tb\n")
    with pytest.raises(DataError, match=r"sts-dev.csv:2: score 7 is outside \[0, 5\]"):
        sts.read_sts_benchmark(path)
    path.write_text("g\tf\t2012\t0001\t2.5\ta\n")
    with pytest.raises(DataError, match=r"sts-dev.csv:1: expected 7 tab-separated fields"):
        sts.read_sts_benchmark(path)


def test_read_sick_range_is_1_to_5(tmp_path):
    path = tmp_path / "SICK_test_annotated.txt"
    path.write_text("pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
                    "1\ta b\tc\t4.5\tNEUTRAL\n2\td\te\t0.5\tNEUTRAL\n")
    with pytest.raises(DataError, match=r"SICK_test_annotated.txt:3: score 0.5 is outside \[1, 5\]"):
        sts.read_sick(path)


def test_task_aliases():
    assert sts.resolve_tasks(["sts12", "STS-B", "sick-r"]) == ("STS12", "STSBenchmark", "SICKRelatedness")
    with pytest.raises(ConfigError, match="unknown STS task 'sts99'"):
        sts.resolve_tasks(["sts99"])


# ---------------------------------------------------------------------- evaluation on synthetic data
def test_evaluate_sts_encodes_each_sentence_once(mini_data, hash_encoder):
    res = sts.evaluate_sts(hash_encoder, mini_data)
    assert len(hash_encoder.calls) == 1  # one encode call for all 7 tasks
    encoded = hash_encoder.calls[0]
    assert len(encoded) == len(set(encoded)) == res["sentences"]
    assert list(res["tasks"]) == list(sts.STS_TASKS)
    # 5 of 6 pairs per subset have gold
    assert res["tasks"]["STS12"]["n"] == 5 * 5 and res["tasks"]["STS13"]["n"] == 3 * 5
    # the avg column is the plain mean of the 7 'all' numbers
    assert res["avg"]["all"] == pytest.approx(np.mean([r["spearman"]["all"] for r in res["tasks"].values()]))
    assert res["avg"]["wmean"] == pytest.approx(np.mean([r["spearman"]["wmean"] for r in res["tasks"].values()]))
    # the synthetic set has other pair counts than SentEval's, and says so
    assert any("not comparable" in w for w in res["warnings"])


def test_spearman_on_pairs_encodes_unique_sentences(hash_encoder):
    pairs = [("a", "b", 1.0), ("a", "c", 2.0), ("b", "c", 3.0), ("c", "a", 4.0)]
    score = sts.spearman_on_pairs(hash_encoder, pairs, batch_size=2)
    assert sorted(hash_encoder.calls[0]) == ["a", "b", "c"]
    lookup = {s: hash_encoder.vector(s) / np.linalg.norm(hash_encoder.vector(s)) for s in "abc"}
    cos = [float(lookup[a] @ lookup[b]) for a, b, _ in pairs]
    from scipy.stats import spearmanr

    assert score == pytest.approx(100 * spearmanr(cos, [1, 2, 3, 4]).statistic)


def test_missing_data_is_one_line_error(tmp_path):
    with pytest.raises(DataError) as err:
        sts.load_sts(tmp_path / "nowhere")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("STS data not found: expected ")
    assert str(tmp_path / "nowhere" / "sts" / "STS12" / "STS.input.MSRpar.txt") in msg
    assert "--data-dir" in msg and "DECONE_DATA" in msg


def test_hub_layout_without_subsets_is_accepted(tmp_path):
    """A download-cache copy (one subset 'all' per year) reads, with mean == wmean == all."""
    from decone.evaluate.sts import HUB_SUBSET

    folder = tmp_path / "sts" / "STS13"
    folder.mkdir(parents=True)
    (folder / f"STS.input.{HUB_SUBSET}.txt").write_text("a b\tc d\ne f\tg h\ni\tj\n")
    (folder / f"STS.gs.{HUB_SUBSET}.txt").write_text("1\n2\n3\n")
    data = sts.load_sts(tmp_path, ["sts13"])
    assert list(data["STS13"]) == [HUB_SUBSET] and len(data["STS13"][HUB_SUBSET]) == 3


# ---------------------------------------------------------------------- the shared data
EXPECTED = {"STS12": 3108, "STS13": 1500, "STS14": 3750, "STS15": 3000, "STS16": 1186, "STSBenchmark": 1379,
            "SICKRelatedness": 4927}


def test_pair_counts_on_shared_data(shared):
    data = sts.load_sts(shared / "data")
    counts = {task: sum(len(p) for p in subsets.values()) for task, subsets in data.items()}
    assert counts == EXPECTED
    assert list(data["STS13"]) == ["FNWN", "headlines", "OnWN"]  # no SMT
    root = shared / "data" / "sts" / "STSBenchmark"
    assert len(sts.read_sts_benchmark(root / "sts-dev.csv")) == 1500
    assert len(sts.read_sts_benchmark(root / "sts-test.csv")) == 1379


def test_stsb_test_with_tiny_encoder_end_to_end(shared, tiny_encoder):
    """Integration: the real STS-B test set through the tiny encoder; each distinct sentence is encoded once."""
    import functools

    calls = []
    encode = tiny_encoder.encode

    @functools.wraps(encode)  # keeps the signature, so the evaluator passes bf16 and show_progress as before
    def recording(texts, *args, **kwargs):
        calls.append(list(texts))
        return encode(texts, *args, **kwargs)

    tiny_encoder.encode = recording
    res = sts.evaluate_sts(tiny_encoder, shared / "data", tasks=["STS-B"], batch_size=128)
    r = res["tasks"]["STSBenchmark"]
    pairs = sts.read_sts_benchmark(shared / "data" / "sts" / "STSBenchmark" / "sts-test.csv")
    distinct = {s for a, b, _ in pairs for s in (a, b)}
    assert r["n"] == 1379 and res["sentences"] == len(distinct) > 2500
    encoded = [t for call in calls for t in call]
    assert sorted(encoded) == sorted(distinct)  # every sentence once, none twice
    assert -100 <= r["spearman"]["all"] <= 100 and not res["warnings"]


def test_download_path_with_a_stand_in_datasets_library(tmp_path, monkeypatch):
    """The hub code path, offline: a stand-in ``datasets`` module serves the rows; the STS sets land in the cache."""
    import sys
    import types

    rows = [{"sentence1": f"a {i}", "sentence2": f"b {i}", "score": (i % 6) * 0.9} for i in range(12)]
    fake = types.ModuleType("datasets")
    requested = []

    def load_dataset(name, split):
        requested.append((name, split))
        return rows

    fake.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", fake)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("DECONE_DATA", str(tmp_path / "empty"))
    cache = tmp_path / "cache"
    monkeypatch.setenv("DECONE_CACHE", str(cache))
    data = sts.load_sts()
    assert ("mteb/stsbenchmark-sts", "test") in requested and ("mteb/sickr-sts", "test") in requested
    assert (cache / "sts" / "STS12" / "STS.input.all.txt").is_file()
    assert all(sum(len(p) for p in subsets.values()) == 12 for subsets in data.values())
    assert min(p[2] for p in data["SICKRelatedness"]["test"]) >= 1.0  # rescaled into SICK's 1-5
    res = sts.evaluate_sts(_Stub(), data=data)
    assert any("hub copy without subsets" in w for w in res["warnings"])


class _Stub:
    def encode(self, sentences, batch_size=32):
        return np.array([[len(s), s.count("1") + 1.0] for s in sentences], dtype=np.float32)
