"""Distributed training (torchrun) trains the same model as one process, at what speed.

    python benchmarks/ddp_equivalence.py                       # 2 CPU processes (gloo) vs 1, raw-mini, 5 steps
    python benchmarks/ddp_equivalence.py --nproc 4 --model minilm --steps 10

Runs the real command line three times on the same config (``simcse``, batch 64 = the GLOBAL batch, max length 32,
fp32, dropout switched off in a copy of the model so that every run sees the same network):

1. ``python -m decone train ...``                                      one process;
2. ``torchrun --nproc_per_node N -m decone train ...``                 N processes, global negatives;
3. the same with ``--mini-batch-size 8``                                N processes, each with GradCache.

and prints the largest weight difference from run 1 after training, the largest per-step loss difference, and the
throughput of each run (median over the steps after the first, from ``train_log.jsonl``). On CPU, N processes
share the machine's cores (torchrun gives each one ``OMP_NUM_THREADS=1``), so the speed column shows overhead more
than scaling; on a machine with N GPUs each process gets a GPU (nccl) and the speed shows the scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def no_dropout_copy(src: str, dst: Path) -> str:
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout"):
        if key in cfg:
            cfg[key] = 0.0
    (dst / "config.json").write_text(json.dumps(cfg, indent=2))
    return str(dst)


def run(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-4000:]}")
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="raw-mini")
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--mini-batch-size", type=int, default=8)
    a = p.parse_args()

    import torch
    from safetensors.torch import load_file

    info = C.machine()
    cores = os.cpu_count() or 1
    on_gpu = torch.cuda.is_available() and torch.cuda.device_count() >= a.nproc
    print(f"machine: {info['cpu']}, {cores} logical CPUs, torch {info['torch']}, "
          f"{'%d GPUs (nccl)' % torch.cuda.device_count() if on_gpu else 'CPU (gloo)'}, load {info['loadavg_1m']:.2f}")
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    if not on_gpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = no_dropout_copy(C.model_path(a.model), tmp / "model")
        data = str(C.shared() / C.SENTS_10K)
        common = ["train", "simcse", "--model", model, "--data", data, "--max-steps", str(a.steps), "--batch-size",
                  str(a.batch_size), "--max-length", "32", "--no-bf16", "--log-every", "1", "--save-every", "100000",
                  "--seed", "42", "--overwrite"]
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(a.nproc),
                    "-m", "decone"]
        runs = {
            "1 process": [sys.executable, "-m", "decone", *common, "--output", str(tmp / "one")],
            f"{a.nproc} processes": [*torchrun, *common, "--output", str(tmp / "dist")],
            f"{a.nproc} processes + GradCache {a.mini_batch_size}": [
                *torchrun, *common, "--mini-batch-size", str(a.mini_batch_size), "--output", str(tmp / "dist_gc")],
        }
        outs = dict(zip(runs, ("one", "dist", "dist_gc")))
        rows = {}
        for name, cmd in runs.items():
            seconds = run(cmd, env)
            out = tmp / outs[name]
            log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
            summary = json.loads((out / "decone.json").read_text())["summary"]
            speeds = sorted(r["sentences_per_s"] for r in log[1:]) or [summary["sentences_per_s"]]
            rows[name] = {"weights": load_file(out / "model.safetensors"), "losses": [r["loss"] for r in log],
                          "sentences_per_s": speeds[len(speeds) // 2], "wall_s": seconds}
            print(f"  {name:<34} done in {seconds:5.0f} s", flush=True)
    ref = rows["1 process"]
    print()
    print(f"{a.model}, simcse, global batch {a.batch_size}, {a.steps} steps, fp32, dropout off")
    head = f"{'run':<34} {'max |w - w1|':>13} {'max |loss - loss1|':>19} {'sentences/s':>12} {'final loss':>11}"
    print("sentences/s: median over steps 2..N of the global batch's examples per second")
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        dw = max(float((r["weights"][k] - ref["weights"][k]).abs().max()) for k in ref["weights"])
        dl = max(abs(x - y) for x, y in zip(r["losses"], ref["losses"]))
        print(f"{name:<34} {dw:13.2e} {dl:19.2e} {r['sentences_per_s']:12.1f} {r['losses'][-1]:11.6f}")


if __name__ == "__main__":
    main()
