"""Usage errors of every command through the installed console script (`decone` on PATH, one subprocess a case).

An unknown flag, a missing required option or argument, and a non-integer where an integer is expected: exit code 2,
a `Usage:` line, exactly one line starting with `error:`, no traceback. `--help` exits 0 and prints the usage.
The invocations run a few at a time in one module fixture (each pays for Python and torch starting).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

COMMANDS = {  # command words, and the arguments that get past every required parameter but the one under test
    "train": (["train"], ["simcse"]),
    "encode": (["encode"], ["--input", "x.txt", "--output", "x.npy"]),
    "eval sts": (["eval", "sts"], ["--model", "m"]),
    "eval words": (["eval", "words"], ["--model", "m"]),
    "eval transfer": (["eval", "transfer"], ["--model", "m"]),
    "eval fewshot": (["eval", "fewshot"], ["--task", "SST-2", "--model", "m", "--output", "o"]),
    "diagnose": (["diagnose"], ["--model", "m", "--output", "o"]),
    "whiten": (["whiten"], ["--model", "m", "--data", "d.txt", "--output", "o"]),
    "predict": (["predict"], ["--model", "m", "--input", "x.txt"]),
    "sweep": (["sweep"], ["simcse", "--model", "m", "--grid", "lr=1e-5"]),
}
MISSING = {  # the command with one required parameter left out, and a fragment of the error naming it
    "train": ([], "'method'"),
    "encode": (["--input", "x.txt"], "--output"),
    "eval sts": ([], "--model"),
    "eval words": ([], "--model"),
    "eval transfer": ([], "--model"),
    "eval fewshot": (["--model", "m", "--output", "o"], "--task"),
    "diagnose": (["--model", "m"], "--output"),
    "whiten": (["--model", "m", "--output", "o"], "--data"),
    "predict": (["--model", "m"], "--input"),
    "sweep": (["simcse", "--model", "m"], "--grid"),
}
NOT_INT = {  # an integer option given a word
    "train": "--max-steps", "encode": "--batch-size", "eval sts": "--batch-size", "eval words": "--seed",
    "eval transfer": "--max-train", "eval fewshot": "--seeds", "diagnose": "--sample", "whiten": "--dim",
    "predict": "--batch-size", "sweep": "--seeds",
}


def _cases() -> dict[str, tuple[list[str], int, str | None]]:
    """case id -> (argv, expected exit code, a fragment the error line must hold)."""
    cases = {"top-level:help": (["--help"], 0, None), "top-level:unknown-flag": (["--bogus"], 2, "--bogus"),
             "top-level:unknown-command": (["frobnicate"], 2, "frobnicate"),
             "top-level:missing-command": ([], 2, "command")}
    for name, (words, required) in COMMANDS.items():
        cases[f"{name}:help"] = ([*words, "--help"], 0, None)
        cases[f"{name}:unknown-flag"] = ([*words, *required, "--bogus-flag"], 2, "--bogus-flag")
        missing, fragment = MISSING[name]
        cases[f"{name}:missing-required"] = ([*words, *missing], 2, fragment)
        cases[f"{name}:not-an-integer"] = ([*words, *required, NOT_INT[name], "ten"], 2, NOT_INT[name])
    return cases


CASES = _cases()
XFAIL: dict[str, str] = {}  # cases expected to fail (none)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    exe = shutil.which("decone")
    assert exe is not None, "the `decone` console script is not on PATH (pip install -e .)"
    cwd = tmp_path_factory.mktemp("usage")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "200",
           "OMP_NUM_THREADS": "1"}

    def run(argv):
        return subprocess.run([exe, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(CASES, pool.map(run, (argv for argv, _, _ in CASES.values()))))


@pytest.mark.parametrize("case", [pytest.param(c, marks=[pytest.mark.xfail(strict=True, reason=XFAIL[c])] if c in XFAIL
                                                else []) for c in CASES])
def test_usage(case, results):
    argv, code, fragment = CASES[case]
    proc = results[case]
    assert proc.returncode == code, (argv, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    if code == 0:
        assert "Usage:" in proc.stdout and not proc.stderr.strip(), (proc.stdout[:500], proc.stderr)
        return
    lines = proc.stderr.splitlines()
    assert any(line.startswith("Usage: decone") for line in lines), proc.stderr
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert fragment in errors[0], (fragment, errors[0])
    assert not proc.stdout.strip(), proc.stdout


@pytest.mark.parametrize("command", [["train"], ["eval", "sts"], ["diagnose"]])
def test_pooling_help_names_every_pooling(command):
    """The --pooling help is written out (the CLI's help imports no torch); it must list every mode Pooling takes."""
    from typer.testing import CliRunner

    from decone.cli import app
    from decone.encoder.pooling import POOLINGS

    out = " ".join(CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "400"}).output.split())
    start = out.rindex("--pooling") + len("--pooling")  # the option row (a description may name it first)
    section = out[start:out.index(" --", start)]  # up to the next option
    for mode in POOLINGS:
        assert mode in section, (command, mode)
