"""benchmarks/transfer.py: one record a model, reused while its key matches; the table reads it (MRPC with F1)."""

from __future__ import annotations

import json

import pytest

from tests._bench import BENCH, bench_module


_module = bench_module


def _result() -> dict:
    return {"tasks": {"MR": {"acc": 76.4, "encode_seconds": 30.0}, "MRPC": {"acc": 72.0, "f1": 80.45}},
            "avg": 74.2, "seed": 1111, "bf16": False, "seconds": 300.0}


def test_build_records_once_and_the_table_reads_the_record(tmp_path, monkeypatch):
    t, r = _module("transfer"), _module("results")
    calls = []
    monkeypatch.setattr(t, "evaluate", lambda folder, seed=1111: calls.append(folder) or _result())
    records = r.Records("transfer", tmp_path / "repo", tmp_path / "shared", quick=False)
    results = t.build(records, {"minilm": "M"})
    assert t.build(records, {"minilm": "elsewhere"}) == results and calls == ["M"]
    assert t.table(results) == ["| model | MR | MRPC | avg |", "|---|---:|---:|---:|",
                                "| all-MiniLM-L6-v2 | 76.40 | 72.00 (F1 80.45) | 74.20 |"]
    assert t.markdown(results)[0].startswith("`decone eval transfer`, seed 1111, fp32: 5.0 min in all, 0.5 min of it")


def test_the_committed_table_is_the_record():
    t = _module("transfer")
    root = BENCH.parent
    path = root / "results/transfer/minilm.json"
    if not path.exists():
        pytest.skip("no committed transfer record")
    results = {"minilm": json.loads(path.read_text())["value"]}
    for doc in (root / "RESULTS.md", root / "docs/evaluation.md"):
        text = doc.read_text()
        block = text[text.index("<!-- transfer:begin -->"):text.index("<!-- transfer:end -->")]
        assert "\n".join(t.table(results)) in block, doc
