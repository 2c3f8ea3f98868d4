"""benchmarks/geometry.py: the geometry piece diagnoses each of the main table's models once per seed, records it,
reuses the record, and writes tables whose cells are the mean ± sample std of those records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests._bench import BENCH, bench_module


_module = bench_module


def _report(cos: float, align: float = 0.3, layers: int = 3, fn_self: float = 0.4) -> dict:
    token = {"baseline": cos / 2, "self_similarity_content_adj": 0.6, "self_similarity_function_adj": fn_self,
             "intra_similarity_content_adj": 0.3, "intra_similarity_function_adj": 0.35}
    sentence = {"avg_cosine": cos, "isoscore": 0.1}
    output = {"avg_cosine": cos, "isoscore": 0.1, "partition_isotropy_unit": 0.5, "var_top1": 0.134, "var_top5": 0.4,
              "var_top10": 0.5, "effective_rank": 100.0, "mean_norm": 8.0, "centroid_ratio": cos, "alignment": align,
              "uniformity": -2.0}
    return {"output": output, "layers": [{"layer": i, "sentence": sentence, "token": token} for i in range(layers)],
            "counts": {"sentences": 50, "positive_pairs": 7, "token_sentences": 10}, "seconds": 30.0,
            "pooling": "mean", "dim": 32}


def test_the_table_is_the_mean_and_sample_std_over_seeds_and_the_findings_quote_it():
    g = _module("geometry")
    reports = {"raw-mean": [{**_report(0.5), "seed": None}],
               "simcse": [{**_report(0.2, 0.4), "seed": 42}, {**_report(0.4, 0.4), "seed": 43}],
               "simcse-nohead": [{**_report(0.1, 0.5), "seed": 42}, {**_report(0.1, 0.5), "seed": 43}],
               "minilm": [{**_report(0.02, fn_self=0.38), "seed": None}]}
    reports["minilm"][0]["output"]["isoscore"] = None  # a metric a model lacks shows as a dash
    lines = g.table(reports)
    assert lines[0] == "| metric | raw-mini | + simcse (MLP head in training) | + simcse, no head | all-MiniLM-L6-v2 |"
    cos = next(line for line in lines if line.startswith("| avg cosine"))
    assert cos == f"| avg cosine, random pairs | 0.500 | 0.300 ± {np.std([0.2, 0.4], ddof=1):.3f} | 0.100 ± 0.000 | 0.020 |"
    assert next(line for line in lines if line.startswith("| variance on top 1 PC")).split(" | ")[1] == "13.4%"
    assert next(line for line in lines if line.startswith("| IsoScore")).endswith("| – |")
    assert next(line for line in lines if line.startswith("| uniformity")).split(" | ")[1] == "−2.000"
    text = " ".join(g.findings(reports))
    assert "from 0.500 to 0.300 with SimCSE's train-only MLP head and to 0.100 without it (mean of 2 seeds)" in text
    assert "Wang & Isola's trade-off" in text  # alignment rose from 0.3 to 0.5
    assert "function words less self-similar (0.380, adjusted) than content words (0.600)" in text
    reports["simcse-nohead"] = [{**_report(0.1, 0.2), "seed": 42}]
    assert "better on both counts" in " ".join(g.findings(reports))
    worse = " ".join(g.findings({**reports, "simcse-nohead": [{**_report(0.9), "seed": 42}]}))
    assert "Contrastive training raises" in worse and "moves away from the origin" in worse and "rises from" in worse
    layers = g.layer_table(reports)
    assert layers[0] == "| layer | raw-mini | + simcse, no head | all-MiniLM-L6-v2 |" and len(layers) == 2 + 3
    assert layers[2] == "| 0 | 0.50 / 0.100; 0.25; 0.60 / 0.40; 0.30 / 0.35 | 0.10 / 0.100; 0.05; 0.60 / 0.40; 0.30 / 0.35 " \
                        "| 0.02 / 0.100; 0.01; 0.60 / 0.38; 0.30 / 0.35 |"
    del reports["minilm"]
    assert g.findings(reports) == []  # nothing to say without every model it compares


def test_build_diagnoses_each_model_and_seed_once_then_reuses_the_records(tiny_model_dir, tmp_path):
    """Against a tiny random BERT: a trained row gets one record a seed, an untrained row one; the records hold the
    same numbers as diagnosing the folder directly; a second build reads them back without touching a model, and a
    changed setting rediagnoses; the figures and the section come out of the same reports."""
    g, r = _module("geometry"), _module("results")
    data = tmp_path / "sentences.txt"
    words = "the cat sat on a mat while dogs ran far away from home and birds sang in trees".split()
    rng = np.random.default_rng(0)
    data.write_text("\n".join(" ".join(rng.choice(words, 6)) for _ in range(60)) + "\n")
    s = {"sample": 40, "pairs": 200, "token_sample": 8, "seed": 0}
    out, work = tmp_path / "repo", tmp_path / "repo/results/work"
    records = r.Records("geometry", out, tmp_path / "shared", quick=False)
    asked = []

    def folder(row, seed):
        asked.append((row, seed))
        return str(tiny_model_dir)

    def recipe(row):
        return {"method": "simcse", "head": row} if row.startswith("simcse") else {}

    reports = g.build(records, [42, 43], folder, recipe, s, work, data)
    assert list(reports) == [row for row, _, _ in g.MODELS]
    assert [x["seed"] for x in reports["simcse"]] == [42, 43] and [x["seed"] for x in reports["raw-mean"]] == [None]
    assert len(asked) == 7 and sorted({p.name for p in (out / "results/geometry").glob("*.json")}) == sorted(
        ["raw-mean.json", "raw-whitened.json", "minilm.json", "simcse-seed42.json", "simcse-seed43.json",
         "simcse-nohead-seed42.json", "simcse-nohead-seed43.json"])
    direct = g.diagnose_folder(str(tiny_model_dir), "mean", "x", s, data=data)
    assert reports["simcse"][1]["output"]["avg_cosine"] == pytest.approx(direct["output"]["avg_cosine"], abs=1e-6)
    assert reports["raw-mean"][0]["layers"][-1]["token"]["baseline"] == pytest.approx(
        direct["layers"][-1]["token"]["baseline"], abs=1e-6)
    stored = json.loads((out / "results/geometry/simcse-seed42.json").read_text())
    assert stored["key"]["recipe"] == {"method": "simcse", "head": "simcse"} and stored["key"]["settings"] == s

    def no_model(row, seed):
        raise AssertionError("a recorded model was diagnosed again")

    again = g.build(records, [42, 43], no_model, recipe, s, work, data)
    assert again == json.loads(json.dumps(reports))
    g.build(records, [42], folder, recipe, {**s, "pairs": 100}, work, data)
    assert len(asked) == 7 + 5  # the changed setting rediagnoses every model of seed 42

    assert g.plot_hist(reports, work, tmp_path / "hist.png").stat().st_size > 0
    assert g.plot_layers(reports, tmp_path / "layers.png").stat().st_size > 0
    assert g.plot_hist(reports, tmp_path / "empty", tmp_path / "none.png") is None  # no arrays: the figure stays
    section = "\n".join(g.markdown(reports, s, [42, 43], "../results"))
    assert "`decone diagnose --pooling mean --sample 40 --pairs 200 --token-sample 8 --seed 0`" in section
    assert "seeds 42, 43" in section and " ± " in section and "(../results/geometry_layers.png)" in section


def test_the_committed_geometry_tables_are_the_records_and_docs_carry_them():
    """RESULTS.md's geometry section and docs/diagnostics.md's tables are what the committed records give: nothing
    between their markers was typed by hand."""
    g = _module("geometry")
    root = BENCH.parent
    reports = g.from_records(root / "results/geometry")
    if not reports:
        pytest.skip("no committed geometry records")
    table = "\n".join(g.table(reports))
    for path in (root / "RESULTS.md", root / "docs/diagnostics.md"):
        text = path.read_text()
        block = text[text.index("<!-- geometry:begin -->"):text.index("<!-- geometry:end -->")]
        assert table in block, path
        assert "\n".join(g.layer_table(reports)) in block and all(line in block for line in g.findings(reports))


def test_decoder_anisotropy_is_recorded_per_setting_and_tabled_per_layer(tmp_path):
    """On a tiny random GPT-2 folder and a small STS-B-shaped csv: one record a setting, reused, with one value a
    layer for all tokens and without the first; the table and the sentences read those values."""
    from tests.decoders.conftest import WORDS, tiny_decoder, tiny_tokenizer

    g, r = _module("geometry"), _module("results")
    folder = tmp_path / "gpt"
    tiny_decoder("gpt2").save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    rng = np.random.default_rng(0)
    csv = tmp_path / "sts-test.csv"
    csv.write_text("".join(f"main\tx\t2012\t{i}\t3.0\t{' '.join(rng.choice(WORDS, 5))}\t{' '.join(rng.choice(WORDS, 6))}\n"
                           for i in range(40)))
    records = r.Records("geometry", tmp_path / "repo", tmp_path / "shared", quick=False)
    results = g.decoder_build(records, str(folder), csv)
    assert list(results) == [label for label, _, _ in g.DECODER_SETTINGS]
    assert all(len(v["all_tokens"]) == len(v["without_first"]) == 3 for v in results.values())  # embeddings + 2 layers
    assert results["300 sentences"]["sentences"] == 80  # every distinct sentence of the small file
    assert g.decoder_build(records, "/nonexistent", csv) == json.loads(json.dumps(results))  # read back, not measured
    lines = g.decoder_table(results)
    assert lines[0] == "| setting | layer 0 | 1 | 2 (last) |" and len(lines) == 2 + 2 * len(g.DECODER_SETTINGS)
    first = results["300 sentences"]
    assert lines[2] == "| 300 sentences, all tokens | " + " | ".join(f"{v:.3f}" for v in first["all_tokens"]) + " |"
    text = " ".join(g.decoder_findings(results, 0.978))
    low = min(v[k][-1] for v in results.values() for k in ("all_tokens", "without_first"))
    assert f"The last layer sits at {low:.3f}–" in text and "against 0.978 for GPT-2" in text
    assert g.from_records(tmp_path / "repo/results/geometry") == {}  # decoder records are not rows of the main table


def test_the_committed_decoder_table_is_the_records():
    g = _module("geometry")
    root = BENCH.parent
    folder = root / "results/geometry"
    recs = {json.loads(p.read_text())["key"].get("sentences"): json.loads(p.read_text()) for p in folder.glob("gpt-mini-*.json")}
    if len(recs) < 2:
        pytest.skip("no committed decoder records")
    results = {}
    for label, n, bidi in g.DECODER_SETTINGS:
        path = folder / f"gpt-mini-{n}{'-bidirectional' if bidi else ''}.json"
        results[label] = json.loads(path.read_text())["value"]
    text = (root / "docs/decoders.md").read_text()
    block = text[text.index("<!-- decoder-anisotropy:begin -->"):text.index("<!-- decoder-anisotropy:end -->")]
    assert "\n".join(g.decoder_table(results)) in block
