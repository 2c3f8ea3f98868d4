"""The bad-input catalogue, run through the real CLI in a subprocess, plus kill-and-resume and Ctrl-C.

Each case asserts: exit code 2, exactly one ``error:`` line naming the file/line/field, no traceback, and no output
folder left behind (or an untouched earlier one). The catalogue is documented in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SENTS = "\n".join(f"sentence number {i} about the cat and the dog" for i in range(40)) + "\n"


def run_cli(*args: str, cwd: Path, timeout: int = 180, code: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "200"}
    cmd = [sys.executable, "-c", code or "from decone.cli import main; main()", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def assert_clean_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_model_dir):
    """A folder with the tiny model, a T5 (an encoder-decoder: neither encoder nor decoder-only LM), a pickle-only
    and a weightless model folder."""
    from transformers import GPT2Config, GPT2Model

    root = tmp_path_factory.mktemp("catalogue")
    from transformers import T5Config, T5Model

    T5Model(T5Config(num_layers=1, d_model=16, d_kv=8, d_ff=32, num_heads=2, vocab_size=50)).save_pretrained(root / "t5")
    for name in ("pickled", "noweights"):
        (root / name).mkdir()
        for f in tiny_model_dir.iterdir():
            if f.name != "model.safetensors":
                (root / name / f.name).write_bytes(f.read_bytes())
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(tiny_model_dir / "model.safetensors"), root / "pickled" / "pytorch_model.bin")
    (root / "good.txt").write_text(SENTS)
    return root


def write(path: Path, content) -> Path:
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


TRAIN = ["train", "simcse", "--max-steps", "1", "--batch-size", "4", "--max-length", "16", "--no-bf16"]

# (case id, files to write {name: content}, extra argv, expected fragments of the error line)
CATALOGUE = [
    ("empty-file", {"d.txt": b""}, ["--data", "d.txt"], ["d.txt", "file is empty"]),
    ("blank-lines-only", {"d.txt": "\n  \n\n"}, ["--data", "d.txt"], ["d.txt", "only blank lines"]),
    ("invalid-utf8", {"d.txt": b"fine line\nbad \xff\xfe bytes\n"}, ["--data", "d.txt"], ["d.txt:2", "invalid utf-8", "--encoding"]),
    ("latin-1", {"d.txt": "caf\u00e9 one\nna\u00efve two\n".encode("latin-1")}, ["--data", "d.txt"], ["d.txt:1", "invalid utf-8", "--encoding"]),
    ("nul-byte", {"d.txt": b"one\ntwo\x00three\n"}, ["--data", "d.txt"], ["d.txt:2", "NUL byte"]),
    ("single-sentence", {"d.txt": "just one sentence\n"}, ["--data", "d.txt"], ["d.txt", "at least 2"]),
    ("csv-missing-column", {"d.csv": "words,other\na,1\nb,2\n"}, ["--data", "d.csv"], ["d.csv", "missing column 'text'"]),
    ("jsonl-malformed", {"d.jsonl": '{"text": "a"}\n{"text": "b"\n'}, ["--data", "d.jsonl"], ["d.jsonl:2", "malformed JSON"]),
    ("sup-empty-positive", {"d.tsv": "anchor\tpositive\nthe cat\ta cat\nthe dog\t\n"},
     ["--data", "d.tsv", "--method-override", "simcse-sup"], ["d.tsv:3", "empty positive"]),
    ("model-missing", {}, ["--data", "{work}/good.txt", "--model", "./no/such/model"], ["no/such/model", "does not exist"]),
    ("model-no-weights", {}, ["--data", "{work}/good.txt", "--model", "{work}/noweights"], ["noweights", "no model weights"]),
    ("model-pickle-only", {}, ["--data", "{work}/good.txt", "--model", "{work}/pickled"], ["pickled", "pickle", "--allow-pickle"]),
    ("encoder-decoder", {}, ["--data", "{work}/good.txt", "--model", "{work}/t5"], ["t5", "neither a bidirectional encoder"]),
    ("temperature-zero", {}, ["--data", "{work}/good.txt", "--temperature", "0"], ["--temperature", "> 0"]),
    ("temperature-negative", {}, ["--data", "{work}/good.txt", "--temperature", "-0.5"], ["--temperature", "> 0"]),
    ("batch-size-one", {}, ["--data", "{work}/good.txt", "--batch-size", "1"], ["--batch-size", ">= 2"]),
    ("max-length-too-long", {}, ["--data", "{work}/good.txt", "--max-length", "4096"], ["max_length 4096", "position limit 64"]),
    ("unknown-pooling", {}, ["--data", "{work}/good.txt", "--pooling", "max"], ["--pooling", "'max'"]),
    ("lora-save-unknown", {}, ["--data", "{work}/good.txt", "--lora-save", "both"], ["--lora-save", "'both'", "merged, adapter"]),
    ("lora-save-adapter-without-lora", {}, ["--data", "{work}/good.txt", "--lora-save", "adapter"],
     ["--lora-save adapter", "no LoRA adapters"]),
    ("staged-unknown-setting", {}, ["--data", "{work}/good.txt", "--method-override", "llm2vec", "--set", "nosuch=1"],
     ["nosuch", "llm2vec"]),
    ("scl-one-class", {"d.csv": "text,label\nthe cat,pos\nthe dog,pos\na car,pos\n"},
     ["--data", "d.csv", "--method-override", "scl"], ["d.csv", "only one class"]),
]


@pytest.mark.parametrize("case,files,argv,fragments", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_catalogue(case, files, argv, fragments, work, tiny_model_dir, tmp_path):
    for name, content in files.items():
        write(tmp_path / name, content)
    argv = [a.replace("{work}", str(work)) for a in argv]
    args = list(TRAIN)
    if "--method-override" in argv:
        i = argv.index("--method-override")
        args[1] = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if "--model" not in argv:
        argv += ["--model", str(tiny_model_dir)]
    proc = run_cli(*args, *argv, "--output", "out", cwd=tmp_path)
    assert_clean_error(proc, *fragments)
    assert not (tmp_path / "out").exists()


def test_scl_unknown_test_label(tiny_model_dir, tmp_path):
    train = "text,label\n" + "".join(f"good thing {i},pos\nbad thing {i},neg\n" for i in range(6))
    write(tmp_path / "train.csv", train)
    proc = run_cli("train", "scl", "--data", "train.csv", "--model", str(tiny_model_dir), "--max-steps", "1",
                   "--batch-size", "4", "--max-length", "16", "--no-bf16", "--output", "clf", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    write(tmp_path / "test.csv", "text,label\na fine day,pos\na day,neutral\n")
    proc = run_cli("predict", "--model", "clf", "--input", "test.csv", "--label-column", "label",
                   "--output", "pred.jsonl", cwd=tmp_path)
    assert_clean_error(proc, "test.csv:3", "'neutral'", "not one the model knows")
    assert not (tmp_path / "pred.jsonl").exists()


@pytest.mark.parametrize("gold,problem", [("nan", "not finite"), ("7.5", "outside [0, 5]")])
def test_bad_sts_gold(gold, problem, shared, tiny_model_dir, tmp_path):
    """A copy of the STS data whose STS-B test line 3 has a bad gold score: `decone eval sts` names file:line."""
    data = tmp_path / "data"
    (data / "sts").mkdir(parents=True)
    for entry in (shared / "data" / "sts").iterdir():
        if entry.name != "STSBenchmark":
            (data / "sts" / entry.name).symlink_to(entry)
    (data / "sts" / "STSBenchmark").mkdir()
    for entry in (shared / "data" / "sts" / "STSBenchmark").iterdir():
        if entry.name != "sts-test.csv":
            (data / "sts" / "STSBenchmark" / entry.name).symlink_to(entry)
    lines = (shared / "data" / "sts" / "STSBenchmark" / "sts-test.csv").read_text(encoding="utf-8").split("\n")
    fields = lines[2].split("\t")
    fields[4] = gold
    lines[2] = "\t".join(fields)
    write(data / "sts" / "STSBenchmark" / "sts-test.csv", "\n".join(lines))
    proc = run_cli("eval", "sts", "--model", str(tiny_model_dir), "--data-dir", str(data), "--output", "r.json",
                   cwd=tmp_path)
    assert_clean_error(proc, "sts-test.csv:3", problem)
    assert not (tmp_path / "r.json").exists()


def test_output_not_a_decone_run_is_refused_and_untouched(work, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    write(out / "thesis.tex", "precious")
    proc = run_cli(*TRAIN, "--data", str(work / "good.txt"), "--model", str(tiny_model_dir), "--output", "out", cwd=tmp_path)
    assert_clean_error(proc, "out", "not a decone run", "--overwrite")
    assert [p.name for p in out.iterdir()] == ["thesis.tex"] and (out / "thesis.tex").read_text() == "precious"


def test_pickle_allowed_with_flag(work, tmp_path):
    proc = run_cli(*TRAIN, "--data", str(work / "good.txt"), "--model", str(work / "pickled"), "--allow-pickle",
                   "--output", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "model.safetensors").exists()  # saved back as safetensors


def test_latin1_loads_with_encoding_flag(tiny_model_dir, tmp_path):
    write(tmp_path / "d.txt", "caf\u00e9 one\nna\u00efve two\n".encode("latin-1"))
    proc = run_cli("encode", "--model", str(tiny_model_dir), "--input", "d.txt", "--output", "e.npy",
                   "--encoding", "latin-1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    import numpy as np

    assert np.load(tmp_path / "e.npy").shape == (2, 32)


@pytest.mark.parametrize("case", ["one-megabyte-line", "identical-lines"])
def test_warnings_not_errors(case, tiny_model_dir, tmp_path):
    if case == "one-megabyte-line":
        write(tmp_path / "d.txt", "a short line\n" + "word " * 200_000 + "\nanother line\n")
        expected = "d.txt:2: line of 999,999 characters cut"
    else:
        write(tmp_path / "d.txt", "the same line\n" * 10)
        expected = "all 10 examples are identical"
    proc = run_cli(*TRAIN, "--data", "d.txt", "--model", str(tiny_model_dir), "--output", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stderr.replace("\n", " ")
    assert (tmp_path / "out" / "model.safetensors").exists()


DISK_FULL = """
import errno, safetensors.torch as st
from decone.cli import main
calls = {"n": 0}
real = st.save_file
def flaky(tensors, filename, *a, **k):
    calls["n"] += 1
    if calls["n"] == 2:
        raise OSError(errno.ENOSPC, "No space left on device", str(filename))
    return real(tensors, filename, *a, **k)
st.save_file = flaky
main()
"""


def test_disk_full_during_checkpoint_keeps_the_previous_one(work, tiny_model_dir, tmp_path):
    args = ["train", "simcse", "--max-steps", "6", "--save-every", "2", "--batch-size", "4", "--max-length", "16",
            "--no-bf16", "--data", str(work / "good.txt"), "--model", str(tiny_model_dir), "--output", "out"]
    proc = run_cli(*args, cwd=tmp_path, code=DISK_FULL)
    assert_clean_error(proc, "No space left on device")
    state = json.loads((tmp_path / "out" / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 2  # the previous checkpoint, intact
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".checkpoint-")]  # no half-written temp
    resumed = run_cli(*args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr


def _final_weights(folder: Path):
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def _train_args(data, model, out, steps=8):
    return ["train", "mirror", "--max-steps", str(steps), "--save-every", "2", "--log-every", "1", "--batch-size", "4",
            "--max-length", "16", "--no-bf16", "--fixed-threads", "--data", str(data), "--model", str(model), "--output", str(out)]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_kill_and_resume_gives_identical_weights(sig, work, tiny_model_dir, tmp_path):
    """Bitwise identical on CPU fp32: weights, optimizer, scheduler, RNG states and data position are checkpointed."""
    import torch

    full = run_cli(*_train_args(work / "good.txt", tiny_model_dir, tmp_path / "full", steps=40), cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "decone", *_train_args(work / "good.txt", tiny_model_dir, tmp_path / "cut", steps=40)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = tmp_path / "cut" / "checkpoint" / "trainer_state.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["step"] >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be interrupted"
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "checkpoint saved" in stderr and "Traceback" not in stderr, stderr
    else:
        assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "cut" / "decone.json").exists() or sig == signal.SIGINT
    resumed = run_cli(*_train_args(work / "good.txt", tiny_model_dir, tmp_path / "cut", steps=40), "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    a, b = _final_weights(tmp_path / "full"), _final_weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)
    loss = lambda f: [json.loads(r).get("loss") for r in (f / "train_log.jsonl").read_text().splitlines()]
    assert loss(tmp_path / "full") == loss(tmp_path / "cut")
