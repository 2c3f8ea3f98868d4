"""``decone diagnose`` through a local Typer app: json + PNGs, reproducibility, one-line errors."""

from __future__ import annotations

import json
import random

import pytest
import typer
from typer.testing import CliRunner

from decone.diagnostics.command import register
from decone.diagnostics.data import load_data, read_stsb
from decone.errors import DataError

WORDS = ("the a of to and in is was cat dog sat mat man woman child play ran good bad movie film great happy sad day "
         "night city news phone sales market stock price car road house tree water fire music song book").split()
PLOTS = ("cosine_hist.png", "layers.png", "pca.png", "spectrum.png", "alignment_uniformity.png")


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))) + "."


@pytest.fixture()
def stsb_csv(tmp_path):
    """A small STS-B-format file: genre, file, year, id, score, s1, s2 (tab-separated, quotes left alone)."""
    rng = random.Random(0)
    rows = []
    for i in range(40):
        s1 = sentence(rng)
        s2 = s1 if i % 4 == 0 else sentence(rng)
        score = 5.0 if i % 4 == 0 else rng.uniform(0, 3.9)
        rows.append(f"main-captions\tMSRvid\t2012test\t{i:04d}\t{score:.3f}\t{s1}\t{s2}")
    rows.append('main-news\theadlines\t2013\t9999\t4.200\tHe said "yes".\tHe said "yes" again.')
    path = tmp_path / "sts-mini.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture()
def app():
    app = typer.Typer()
    register(app)
    return app


def run(app, *args):
    return CliRunner().invoke(app, ["diagnose", *map(str, args)])


def test_diagnose_writes_json_and_plots(app, tiny_model_dir, stsb_csv, tmp_path):
    out = tmp_path / "diag"
    result = run(app, "--model", tiny_model_dir, "--model", tiny_model_dir, "--label", "tiny", "--label", "tiny-cls",
                 "--data", stsb_csv, "--output", out, "--sample", 60, "--pairs", 500, "--token-sample", 20,
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "diagnostics.json").read_text())
    assert [m["label"] for m in doc["models"]] == ["tiny", "tiny-cls"]
    model = doc["models"][0]
    assert model["counts"]["sentences"] == 60
    assert model["counts"]["positive_pairs"] == 11  # 10 copies (score 5) + the quoted pair (4.2)
    for key in ("avg_cosine", "isoscore", "partition_isotropy", "var_top1", "effective_rank", "mean_norm",
                "centroid_norm", "alignment", "uniformity"):
        assert model["output"][key] is not None, key
    assert len(model["layers"]) == 3  # embeddings + 2 transformer layers
    assert all("sentence" in layer and "token" in layer for layer in model["layers"])
    assert model["layers"][-1]["token"]["self_similarity_content_adj"] is not None
    assert len(model["spectrum"]) == 32
    for name in PLOTS:
        assert (out / name).stat().st_size > 5000, name
    assert "avg cosine" in result.output and "tiny-cls" in result.output  # the rich table


def test_diagnose_is_reproducible(app, tiny_model_dir, stsb_csv, tmp_path):
    docs = []
    for name in ("a", "b"):
        result = run(app, "-m", tiny_model_dir, "--data", stsb_csv, "-o", tmp_path / name, "--sample", 30,
                     "--pairs", 200, "--token-sample", 10, "--seed", 3, "--device", "cpu")
        assert result.exit_code == 0, result.output
        docs.append(json.loads((tmp_path / name / "diagnostics.json").read_text())["models"])
    for m in docs:
        for entry in m:
            entry.pop("seconds")
            entry.pop("path")
    assert docs[0] == docs[1]


def test_diagnose_plain_text_has_no_alignment(app, tiny_model_dir, tmp_path):
    rng = random.Random(1)
    data = tmp_path / "sents.txt"
    data.write_text("\n".join(sentence(rng) for _ in range(50)) + "\n\n")
    out = tmp_path / "diag"
    result = run(app, "-m", tiny_model_dir, "--data", data, "-o", out, "--token-sample", 0, "--device", "cpu")
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "diagnostics.json").read_text())
    assert doc["models"][0]["output"]["alignment"] is None
    assert "token" not in doc["models"][0]["layers"][0]
    for name in PLOTS:
        assert (out / name).exists()


def test_missing_data_file_is_one_line(app, tiny_model_dir, tmp_path):
    missing = tmp_path / "nope.csv"
    result = run(app, "-m", tiny_model_dir, "--data", missing, "-o", tmp_path / "o")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"error: {missing}: file not found"]
    assert not (tmp_path / "o" / "diagnostics.json").exists()


def test_missing_model_is_one_line(app, stsb_csv, tmp_path):
    result = run(app, "-m", tmp_path / "no-model", "--data", stsb_csv, "-o", tmp_path / "o")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("[")]
    assert len(lines) == 1 and lines[0].startswith("error:") and "no-model" in lines[0]


def test_bad_rows_name_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("g\tf\t2012\t1\t4.0\ta\tb\ng\tf\t2012\t2\tfive\ta\tb\n")
    with pytest.raises(DataError, match=r"bad.csv:2: score 'five' is not a number"):
        read_stsb(bad)
    short = tmp_path / "short.csv"
    short.write_text("g\tf\t2012\t1\t4.0\ta\n")
    with pytest.raises(DataError, match=r"short.csv:1: expected 7"):
        read_stsb(short)
    with pytest.raises(DataError, match="no STS Benchmark files"):
        load_data(tmp_path)


def test_bad_flags(app, tiny_model_dir, stsb_csv, tmp_path):
    result = run(app, "-m", tiny_model_dir, "--data", stsb_csv, "-o", tmp_path / "o", "--sample", 1)
    assert result.exit_code == 2 and "--sample" in result.output
    result = run(app, "-m", tiny_model_dir, "-m", tiny_model_dir, "--label", "x", "--data", stsb_csv, "-o", tmp_path / "o")
    assert result.exit_code == 2 and "label" in result.output


@pytest.mark.shared
def test_raw_mini_is_anisotropic(raw_mini, shared, tmp_path):
    from decone import Encoder
    from decone.diagnostics.report import diagnose_encoder

    data = load_data(shared / "data" / "sts" / "STSBenchmark" / "sts-dev.csv")
    enc = Encoder.load(raw_mini, pooling="mean", device="cpu")
    report = diagnose_encoder(enc, data, "raw-mini", sample_size=300, n_pairs=5000, token_sample=30)
    out = report["output"]
    assert out["avg_cosine"] > 0.4  # MEASURED.md: 0.56 on STS-B train
    assert out["isoscore"] < 0.2
    assert out["centroid_ratio"] > 0.5
    assert len(report["layers"]) == 5
