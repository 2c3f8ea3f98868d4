"""benchmarks/sts_aggregations.py: one record a model, reused while its key matches; a table of every aggregation
with the averages evaluate_sts computed; docs/evaluation.md and RESULTS.md carry what the committed records give."""

from __future__ import annotations


import pytest

from tests._bench import BENCH, bench_module


_module = bench_module


def _result(base: float, wmean_gap: float, bf16: bool = False) -> dict:
    tasks = {t: {"spearman": {"all": base + i, "mean": base + i - 1, "wmean": base + i + wmean_gap * (i + 1)},
                 "pearson": {"all": base, "mean": base, "wmean": base}} for i, t in enumerate(("STS12", "STS13"))}
    avg = {agg: sum(v["spearman"][agg] for v in tasks.values()) / 2 for agg in ("all", "mean", "wmean")}
    return {"tasks": tasks, "avg": avg, "pearson_avg": {"all": base + 0.5}, "sentences": 100, "bf16": bf16,
            "seconds": 30.0}


def test_table_and_findings_read_the_results():
    s = _module("sts_aggregations")
    results = {"minilm": _result(80.0, 0.1), "raw-mean": _result(40.0, 3.0), "raw-cls": _result(20.0, 0.0)}
    lines = s.table(results)
    assert lines[0] == "| model | STS12 | STS13 | avg |"
    assert lines[2] == "| all-MiniLM-L6-v2 (its mean pooling), `all` | 80.00 | 81.00 | 80.50 |"
    assert "| decone-raw-mini, mean pooling, `wmean` | 43.00 | 47.00 | 45.00 |" in lines
    assert [line for line in lines if "cls_before_pooler" in line] == [
        "| decone-raw-mini, `cls_before_pooler`, `all` | 20.00 | 21.00 | 20.50 |"]  # [CLS]: `all` only
    text = " ".join(s.findings(results))
    assert "avg 80.50 `all` against 80.65 `wmean`" in text and "40.50 `all` against 45.00 `wmean`" in text
    assert "the widest gaps are STS13 (41.0 vs 47.0) and STS12 (40.0 vs 43.0)" in text
    assert "Pearson (`all`) avg: all-MiniLM-L6-v2 80.50, decone-raw-mini, mean pooling 40.50." in text
    assert "fp32; 100 distinct" in s.markdown(results)[0]


def test_build_evaluates_each_model_once_then_reuses_its_record(tmp_path, monkeypatch):
    s, r = _module("sts_aggregations"), _module("results")
    calls = []

    def fake(folder, pooling, data):
        calls.append((folder, pooling))
        return _result(50.0, 1.0)

    monkeypatch.setattr(s, "evaluate", fake)
    records = r.Records("sts_aggregations", tmp_path / "repo", tmp_path / "shared", quick=False)
    data = {"STSBenchmark": {}, "STS12": {}}
    first = s.build(records, {"minilm": "M", "raw": "R"}, data)
    assert calls == [("M", None), ("R", "mean"), ("R", "cls_before_pooler")] and list(first) == ["minilm", "raw-mean", "raw-cls"]
    assert s.build(records, {"minilm": "M", "raw": "R"}, data) == first and len(calls) == 3
    s.build(records, {"minilm": "M", "raw": "R"}, {"STSBenchmark": {}})  # other tasks: evaluated again
    assert len(calls) == 6


def test_the_committed_tables_are_the_records():
    s = _module("sts_aggregations")
    import json

    root = BENCH.parent
    folder = root / "results/sts_aggregations"
    results = {p.stem: json.loads(p.read_text())["value"] for p in folder.glob("*.json")} if folder.is_dir() else {}
    if set(results) != {name for name, *_ in s.MODELS}:
        pytest.skip("no committed STS-aggregation records")
    for path in (root / "RESULTS.md", root / "docs/evaluation.md"):
        text = path.read_text()
        block = text[text.index("<!-- sts-aggregations:begin -->"):text.index("<!-- sts-aggregations:end -->")]
        assert "\n".join(s.table(results)) in block and all(line in block for line in s.findings(results)), path
