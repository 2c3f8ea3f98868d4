"""The runnable examples, run as a user would: a subprocess with the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_example(name: str, *args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_semantic_search_ranks_lines_and_caches(tiny_model_dir, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("the cat sat on the mat\n\nstocks fell sharply today\nmarkets rallied after the report\n")
    proc = run_example("semantic_search.py", str(notes), "stocks fell sharply today", "--model", str(tiny_model_dir),
                       "--top-k", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ranked = [line.split() for line in proc.stdout.splitlines() if line.strip().startswith(("1.", "2."))]
    assert len(ranked) == 2
    assert ranked[0][4:] == "stocks fell sharply today".split() and float(ranked[0][1]) == pytest.approx(1.0, abs=1e-3)
    assert ranked[0][2:4] == ["line", "3"]  # the blank line 2 is skipped but line numbers stay the file's
    assert len(list(tmp_path.glob("notes.txt.*.decone.npy"))) == 1  # embeddings cached beside the file
    again = run_example("semantic_search.py", str(notes), "--model", str(tiny_model_dir), cwd=tmp_path,
                        stdin="the cat sat on the mat\n")
    assert again.returncode == 0 and "embedded" not in again.stdout  # the cache was reused
    assert "1. 1.000  line      1" in again.stdout


def test_semantic_search_cache_follows_the_model_weights(tiny_model_dir, tmp_path):
    import shutil

    from tests.conftest import make_tiny_model

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    notes = tmp_path / "notes.txt"
    notes.write_text("alpha beta\ngamma delta\n")
    first = run_example("semantic_search.py", str(notes), "alpha", "--model", str(model), cwd=tmp_path)
    assert first.returncode == 0 and "embedded 2 lines" in first.stdout
    make_tiny_model(model, seed=1)  # "retrained" into the same folder
    second = run_example("semantic_search.py", str(notes), "alpha", "--model", str(model), cwd=tmp_path)
    assert second.returncode == 0 and "embedded 2 lines" in second.stdout  # not the stale cache


def test_semantic_search_missing_file_is_one_line_exit_2(tiny_model_dir, tmp_path):
    proc = run_example("semantic_search.py", "nope.txt", "q", "--model", str(tiny_model_dir), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: nope.txt: file not found"


@pytest.mark.slow
def test_news_sentiment_runs(shared, minilm_dir, tmp_path):
    proc = run_example("news_sentiment.py", "--top-k", "3", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "most relevant to 'cell phone sales'" in proc.stdout and "SST-2 dev accuracy" in proc.stdout


def test_news_sentiment_bad_arguments_are_one_line_exit_2(tmp_path):
    proc = run_example("news_sentiment.py", "--top-k", "0", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --top-k and --train-steps must be >= 1"
