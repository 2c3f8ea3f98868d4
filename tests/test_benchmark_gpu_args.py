"""benchmarks/gpu.py's argument handling, on a CPU (the GPU measurements themselves need a CUDA machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_plan_lists_every_measurement_without_a_gpu():
    proc = run("--plan", "--models", "minilm,raw-mini", "--batch-sizes", "64,512", "--steps", "5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("pytest -m gpu")
    assert sum("decone simcse vs sentence-transformers" in line for line in lines) == 4
    assert sum(line.startswith("encode ") for line in lines) == 2
    assert "pytest" not in run("--plan", "--skip-tests", "--encode", "0").stdout


@pytest.mark.parametrize("args,message", [
    (["--batch-sizes", "64,x"], "expected integers"),
    (["--batch-sizes", "1"], ">= 2"),
    (["--steps", "0"], "--steps and --warmup must be >= 1"),
    (["--warmup", "0"], "--steps and --warmup must be >= 1"),
    (["--encode", "-5"], ">= 0"),
])
def test_bad_arguments_are_one_line_usage_errors(args, message):
    proc = run(*args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the script would measure it")
def test_without_cuda_it_says_so_and_exits_2():
    proc = run("--skip-tests")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: no CUDA device here: benchmarks/gpu.py measures the GPU path only (see --plan)"
