"""GradCache memory: peak RSS of a batch of 1024 with ``--mini-batch-size 64`` against a plain batch of 64.

    python benchmarks/gradcache_memory.py                      # all-MiniLM-L6-v2, 3 steps each
    python benchmarks/gradcache_memory.py --model raw-mini --also-uncached 256
    python benchmarks/gradcache_memory.py --max-memory 4GB     # decone train mirror on MiniLM, defaults, within 4 GB
    python benchmarks/gradcache_memory.py --max-memory 4GB --steps 0 --precision fp32   # a whole epoch, fp32 (AVX2 CPUs)

Each run is ``decone.train.fit`` (method ``simcse``, max length 32, the STS-B 10k sentences) in its own subprocess, so
the peaks do not mix; the peak resident set size (``ru_maxrss``) is read at the end of the run, and the RSS after the
model is loaded (before the first step) is printed beside it. Batches are drawn without length grouping, so every step
sees random sentence lengths (batch widths near the maximum) and the peak does not depend on which length band a
step happens to draw. ``--also-uncached N`` adds a plain batch of N for contrast (a batch of 1024 uncached needs
several GB).

``--max-memory SIZE`` measures the budget instead: ``decone train mirror`` on the model with the method's defaults
(batch 200, max length 50, the Mirror-BERT 10k sentences, ``--steps`` steps) twice, with no budget (the whole batch
at once) and with ``--max-memory SIZE`` (decone picks the GradCache mini-batch), and prints both peaks, the chosen
mini-batch and the two loss curves. ``--steps 0`` trains the whole epoch (50 steps); ``--precision fp32`` turns bf16
autocast off, as on a CPU without native bf16 (decone's default there), whose activations are twice the size.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def worker(a) -> dict:
    import torch

    from decone.data import read_dataset
    from decone.train import TrainConfig, fit

    info: dict = {}

    class Callback:
        def on_train_begin(self, state):
            info["rss_before_training_mb"] = C.peak_rss_mb()

        def on_step_end(self, state):
            info.setdefault("step_times", []).append(time.perf_counter())

    data = read_dataset(str(C.shared() / C.SENTS_10K), "sentences")
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(method="simcse", model=C.model_path(a.model), output=out, batch_size=a.batch_size,
                          mini_batch_size=a.mini_batch_size, max_length=32, max_steps=a.steps, save_every=10**9,
                          log_every=10**9, group_by_length=False, seed=42)
        summary = fit(cfg, callbacks=[Callback()], data=data)
    steps = info["step_times"]
    return {"batch_size": a.batch_size, "mini_batch_size": a.mini_batch_size, "steps": a.steps,
            "peak_rss_mb": C.peak_rss_mb(), "rss_before_training_mb": info["rss_before_training_mb"],
            "seconds_per_step": (steps[-1] - t) / len(steps) if len(steps) < 2 else (steps[-1] - steps[0]) / (len(steps) - 1),
            "final_loss": summary["final_loss"], "threads": torch.get_num_threads()}


def worker_mirror(a) -> dict:
    """``decone train mirror`` with its defaults; a budget of "" means none (a huge one: the whole batch at once)."""
    from decone.train import TrainConfig, Trainer

    losses = []

    class Callback:
        def on_train_begin(self, state):
            losses.clear()

        def on_step_end(self, state):
            losses.append(state.last_loss)

    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(method="mirror", model=C.model_path(a.model), data=str(C.shared() / C.SENTS_10K), output=out,
                          max_steps=a.steps or None, epochs=1, save_every=10**9, log_every=1, seed=42,
                          max_memory=a.budget or "1TB", bf16=None if a.precision == "auto" else a.precision == "bf16")
        trainer = Trainer(cfg, callbacks=[Callback()])
        t = time.perf_counter()
        trainer.run()
    return {"budget": a.budget or None, "mini_batch_size": trainer.config.mini_batch_size, "losses": losses,
            "peak_rss_mb": C.peak_rss_mb(), "seconds": time.perf_counter() - t, "bf16": trainer.use_bf16}


def mirror_budget(a) -> None:
    info = C.machine()
    print(C.machine_line(info))
    runs = []
    for budget in ("", a.max_memory):
        res = C.run_worker([str(Path(__file__).resolve()), "--worker", "--model", a.model, "--steps", str(a.steps),
                            "--budget", budget, "--precision", a.precision])
        runs.append(res)
        print(f"  {'no budget' if not budget else '--max-memory ' + budget:<22} mini-batch "
              f"{res['mini_batch_size'] or 'none (whole batch)'}: peak RSS {res['peak_rss_mb']:,.0f} MiB, "
              f"{res['seconds']:.0f} s, {len(res['losses'])} steps, {'bf16 autocast' if res['bf16'] else 'fp32'}",
              flush=True)
    from decone.memory import parse_size

    (free, fitted), limit = runs, parse_size(a.max_memory)
    diff = max(abs(x - y) for x, y in zip(free["losses"], fitted["losses"]))
    print(f"\nloss per step, no budget:  {' '.join(f'{x:.4f}' for x in free['losses'])}")
    print(f"loss per step, {a.max_memory}: {' '.join(f'{x:.4f}' for x in fitted['losses'])}")
    print(f"max |difference| {diff:.4f} (GradCache is exact; with dropout on, the mini-batches draw their own masks)")
    print(f"peak RSS with --max-memory {a.max_memory}: {fitted['peak_rss_mb']:,.0f} MiB "
          f"({'within' if fitted['peak_rss_mb'] * 2**20 <= limit else 'OVER'} the budget), without: "
          f"{free['peak_rss_mb']:,.0f} MiB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="minilm")
    p.add_argument("--small", type=int, default=64, help="the plain batch")
    p.add_argument("--large", type=int, default=1024, help="the GradCache batch")
    p.add_argument("--mini-batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=3, help="optimizer steps (--max-memory: 0 = one whole epoch)")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="--max-memory runs: bf16 autocast where the CPU has it (auto), or forced")
    p.add_argument("--also-uncached", type=int, default=0, help="also a plain batch of this size")
    p.add_argument("--max-memory", help="instead: decone train mirror with its defaults, without and with this budget")
    p.add_argument("--budget", help=argparse.SUPPRESS)
    C.add_omp_flag(p)
    p.add_argument("--json")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    C.set_omp(a)
    if a.worker:
        print(json.dumps(worker_mirror(a) if a.budget is not None else worker(a)))
        return
    if a.max_memory:
        return mirror_budget(a)

    info = C.machine()
    print(f"machine: {info['cpu']}, {info['logical_cpus']} logical CPUs, torch {info['torch']}, "
          f"load {info['loadavg_1m']:.2f}; model {a.model}, simcse, max length 32, {a.steps} steps each")
    runs = [(a.small, 0), (a.large, a.mini_batch_size)]
    if a.also_uncached:
        runs.append((a.also_uncached, 0))
    results = []
    for batch, mini in runs:
        res = C.run_worker([str(Path(__file__).resolve()), "--worker", "--model", a.model, "--batch-size", str(batch),
                            "--mini-batch-size", str(mini), "--steps", str(a.steps)])
        results.append(res)
        label = f"batch {batch}" + (f", mini-batch {mini} (GradCache)" if mini else " (plain)")
        print(f"  {label:<40} peak RSS {res['peak_rss_mb']:8.0f} MiB (after load {res['rss_before_training_mb']:6.0f}; "
              f"training adds {res['peak_rss_mb'] - res['rss_before_training_mb']:6.0f}); "
              f"{res['seconds_per_step']:.1f} s/step", flush=True)
    small, large = results[0], results[1]
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    print()
    print(f"batch {a.large} with GradCache / batch {a.small} plain: peak RSS ratio {ratio:.3f} (target <= 1.2); "
          f"time per example {large['seconds_per_step'] / a.large / (small['seconds_per_step'] / a.small):.2f}x")
    if a.json:
        Path(a.json).write_text(json.dumps({"machine": info, "results": results}, indent=2))


if __name__ == "__main__":
    main()
