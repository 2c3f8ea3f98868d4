"""``decone eval`` through typer's CliRunner: tables, formats, one-line errors with exit code 2."""

from __future__ import annotations

import csv
import io
import json

import pytest
import typer
from typer.testing import CliRunner

from decone.errors import DeconeError
from decone.evaluate.command import register


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root():  # keep `eval` a subcommand, as in the real CLI
        pass

    register(app)
    return app


def invoke(app, args):
    """Run like decone's main does: a DeconeError becomes its one-line message and exit code 2."""
    result = CliRunner().invoke(app, args)
    if isinstance(result.exception, DeconeError):
        return result.exception.exit_code, str(result.exception), result
    return result.exit_code, result.output, result


def test_eval_sts_and_words_table(app, mini_data, tiny_model_dir):
    code, out, res = invoke(app, ["eval", "sts,words", "--model", str(tiny_model_dir), "--data-dir", str(mini_data),
                                  "--no-bf16"])
    assert code == 0, out
    assert "STS: Spearman" in out and "STS aggregations" in out and "Word similarity" in out
    for col in ("STS12", "STS16", "STS-B", "SICK-R", "avg", "wmean", "SL999"):
        assert col in out
    assert tiny_model_dir.name in out


def test_two_models_and_pooling_per_model(app, mini_data, tiny_model_dir, tmp_path):
    out_file = tmp_path / "res.json"
    code, out, _ = invoke(app, ["eval", "sts", "-m", str(tiny_model_dir), "-m", str(tiny_model_dir),
                                "--pooling", "mean", "--pooling", "cls_before_pooler", "--data-dir", str(mini_data),
                                "--output", str(out_file)])
    assert code == 0, out
    res = json.loads(out_file.read_text())
    assert [m["pooling"] for m in res["models"]] == ["mean", "cls_before_pooler"]
    assert res["models"][0]["label"] != res["models"][1]["label"]
    assert set(res["models"][0]["sts"]["avg"]) == {"all", "mean", "wmean"}
    assert res["settings"]["seed"] == 1111


@pytest.mark.parametrize("fmt", ["md", "csv", "json"])
def test_formats_to_stdout(app, mini_data, tiny_model_dir, fmt):
    code, out, res = invoke(app, ["eval", "words", "-m", str(tiny_model_dir), "--data-dir", str(mini_data),
                                  "--format", fmt])
    assert code == 0, out
    stdout = res.stdout
    if fmt == "json":
        assert "words" in json.loads(stdout)["models"][0]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(stdout)))
        assert len(rows) == 1 and "words:avg" in rows[0]
    else:
        assert stdout.lstrip().startswith("**Word similarity") and "| model |" in stdout


def test_transfer_through_cli(app, mini_data, tiny_model_dir):
    code, out, _ = invoke(app, ["eval", "transfer", "-m", str(tiny_model_dir), "--data-dir", str(mini_data),
                                "--transfer-tasks", "MR,TREC", "--seed", "5"])
    assert code == 0, out
    assert "Transfer" in out and "seed 5" in out and "TREC" in out


def test_missing_data_dir_is_one_line_exit_2(app, tiny_model_dir, tmp_path):
    missing = tmp_path / "no-data"
    code, msg, _ = invoke(app, ["eval", "sts", "--model", str(tiny_model_dir), "--data-dir", str(missing)])
    assert code == 2
    assert "\n" not in msg
    assert msg == (f"STS data not found: expected {missing}/sts/STS12/STS.input.MSRpar.txt; "
                   "pass --data-dir or set DECONE_DATA")


@pytest.mark.parametrize("args, text", [
    (["eval", "sts,bogus"], "unknown evaluation task 'bogus'"),
    (["eval", "sts", "-p", "mean", "-p", "cls"], "2 --pooling values for 1 models"),
    (["eval", "sts", "-p", "max"], "unknown pooling 'max'"),
    (["eval", "sts", "--format", "xml"], "--format 'xml'"),
    (["eval", "transfer", "--transfer-tasks", "MR,XYZ"], "unknown transfer task 'XYZ'"),
])
def test_user_errors(app, tiny_model_dir, mini_data, args, text):
    code, msg, _ = invoke(app, [*args, "--model", str(tiny_model_dir), "--data-dir", str(mini_data)])
    assert code == 2 and text in msg and "\n" not in msg


def test_real_cli_main_exits_2_on_missing_data(tiny_model_dir, tmp_path, capsys):
    """Through decone's own entry point: `eval` must be registered (a broken registration fails here)."""
    import decone.cli as cli

    assert "eval" in {c.name for c in cli.app.registered_commands}, "decone.cli does not register eval"
    with pytest.raises(SystemExit) as exc:
        cli.main(["eval", "sts", "--model", str(tiny_model_dir), "--data-dir", str(tmp_path / "none")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: STS data not found") and "\n" not in err
