"""``predict`` and ``fewshot`` through Typer's CliRunner on a local app holding only this package's commands."""

import json

import numpy as np
from types import SimpleNamespace

import pytest
import typer
from typer.testing import CliRunner

from decone.classify import command
from decone.classify.scl import SCLClassifierLoss
from decone.data import Dataset

WORDS_POS = ["good movie", "great film", "happy day", "good song", "great book", "happy child", "good day", "great song"]
WORDS_NEG = ["bad movie", "terrible film", "sad day", "bad song", "terrible book", "sad child", "bad day", "sad song"]


@pytest.fixture()
def app():
    app = typer.Typer()
    command.register(app)
    return app


@pytest.fixture()
def classifier_dir(tiny_encoder, tmp_path):
    loss = SCLClassifierLoss(0.9)
    data = Dataset([(t,) for t in WORDS_POS + WORDS_NEG], "mem", labels=["pos"] * 8 + ["neg"] * 8)
    loss.setup(SimpleNamespace(encoder=tiny_encoder), data)
    tiny_encoder.save(tmp_path / "clf")
    loss.save(tmp_path / "clf")
    return tmp_path / "clf"


def test_predict_writes_labels_and_probabilities(app, classifier_dir, tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text("text,label\ngood movie,pos\nsad day,neg\nthe cat sat,pos\n")
    out = tmp_path / "preds.jsonl"
    result = CliRunner().invoke(app, ["predict", "--model", str(classifier_dir), "--input", str(inp), "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["good movie", "sad day", "the cat sat"]
    for r in rows:
        assert r["label"] in ("neg", "pos") and set(r["probabilities"]) == {"neg", "pos"}
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)
    assert [r["gold"] for r in rows] == ["pos", "neg", "pos"]
    assert "accuracy" in result.output


def test_predict_to_stdout_from_plain_text(app, classifier_dir, tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("good movie\n\nbad movie\n")
    result = CliRunner().invoke(app, ["predict", "-m", str(classifier_dir), "-i", str(inp)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 2 and "gold" not in rows[0]


def test_predict_unknown_gold_label_names_the_line(app, classifier_dir, tmp_path):
    inp = tmp_path / "in.tsv"
    inp.write_text("text\tlabel\ngood movie\tpos\nbad movie\tneutral\n")
    result = CliRunner().invoke(app, ["predict", "-m", str(classifier_dir), "-i", str(inp)])
    assert result.exit_code == 2
    assert f"{inp}:3: label 'neutral'" in result.output


def test_predict_refuses_a_plain_encoder(app, tiny_encoder, tmp_path):
    tiny_encoder.save(tmp_path / "enc")
    inp = tmp_path / "in.txt"
    inp.write_text("good movie\n")
    result = CliRunner().invoke(app, ["predict", "-m", str(tmp_path / "enc"), "-i", str(inp)])
    assert result.exit_code == 2 and "not a classifier" in result.output


def _sst_dir(root, test_extra=""):
    folder = root / "classification" / "SST" / "binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train = [f"{w} {rng.choice(['the', 'a', 'this'])}\t1" for w in WORDS_POS * 3] + \
            [f"{w} {rng.choice(['the', 'a', 'this'])}\t0" for w in WORDS_NEG * 3]
    (folder / "sentiment-train").write_text("\n".join(train) + "\n")
    (folder / "sentiment-dev").write_text("good movie\t1\nbad movie\t0\n")
    (folder / "sentiment-test").write_text("good day\t1\nsad song\t0\nhappy film\t1\nbad book\t0\n" + test_extra)
    return root


def test_fewshot_grid_runs_resumes_and_plots(app, tiny_model_dir, tmp_path, monkeypatch):
    import decone.classify.fewshot as fewshot

    data = _sst_dir(tmp_path / "data")
    out = tmp_path / "fs"
    args = ["fewshot", "--task", "sst2", "--model", str(tiny_model_dir), "--output", str(out), "--shots", "4,8",
            "--seeds", "1", "--noise", "0,0.5", "--lambda", "0,0.9", "--max-steps", "2", "--batch-size", "4",
            "--lr", "1e-3", "--no-bf16", "--data-dir", str(data)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and {r["n_test"] for r in rows} == {4}
    assert {(r["shots"], r["noise"], r["n_flipped"]) for r in rows} == {(4, 0.0, 0), (4, 0.5, 2), (8, 0.0, 0), (8, 0.5, 4)}
    assert "| SST-2 | 8 | 0.5 | CE+SCL (λ=0.9) | 1 |" in (out / "results.md").read_text()
    for png in ("accuracy_vs_shots.png", "accuracy_vs_noise.png", "features_pca.png"):
        assert (out / png).stat().st_size > 10_000

    calls = []
    monkeypatch.setattr(fewshot, "train_and_evaluate", lambda *a, **k: calls.append(a) or {})
    again = CliRunner().invoke(app, args + ["--no-plots"])
    assert again.exit_code == 0, again.output
    assert calls == [] and "8 already done" in again.output  # nothing retrained

    changed = CliRunner().invoke(app, [a if a != "1e-3" else "2e-3" for a in args])
    assert changed.exit_code == 2 and "lr=0.001" in changed.output
    other_head = CliRunner().invoke(app, args + ["--head-init", "random"])  # runs with another start are not reused
    assert other_head.exit_code == 2 and "head_init='probe'" in other_head.output
    bad = CliRunner().invoke(app, args + ["--head-init", "zeros"])
    assert bad.exit_code == 2 and "--head-init must be one of probe, random" in bad.output


def test_fewshot_unknown_test_label_names_the_line(app, tiny_model_dir, tmp_path):
    data = _sst_dir(tmp_path / "data", test_extra="odd one\t7\n")
    result = CliRunner().invoke(app, ["fewshot", "--task", "SST-2", "--model", str(tiny_model_dir), "--output",
                                      str(tmp_path / "fs"), "--shots", "4", "--seeds", "1", "--data-dir", str(data)])
    assert result.exit_code == 2
    assert "sentiment-test:5:" in result.output and "7" in result.output.split("sentiment-test:5:")[1]
