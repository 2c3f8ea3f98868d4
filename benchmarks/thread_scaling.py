"""Where a second thread helps decone's CPU training step and where it does not: per-operator time, 1 vs N threads.

    python benchmarks/thread_scaling.py                        # all-MiniLM-L6-v2, 1 vs 2 threads, decone train's policy
    python benchmarks/thread_scaling.py --omp-wait-policy PASSIVE   # sleeping threads (docs/performance.md's first column)

One process runs decone's training step (the ``train_ablation.py`` step of decone now: both SimCSE views in one
forward, bf16 autocast, decone's CPU dropout, clipping, fused AdamW) on the same batches of the STS-B 10k sentences,
switching ``torch.set_num_threads`` between 1 and N and alternating over ``--rounds`` so that drift on a shared machine
falls on both sides. Each timed block runs under ``torch.profiler``; the table gives each operator's self time per
step with 1 and with N threads and the speed-up (1-thread time / N-thread time; N would be perfect scaling). The
wall-clock line is the step with the profiler on (a few percent slower than without).

Operators whose speed-up stays near 1 are the ones that keep the extra cores idle: serial work (the random draws of
dropout), and short memory-bound operations where waking the other OpenMP threads costs about as much as it saves.
The last line measures that wake-up directly: one 64k-element multiply (just above ATen's 32k-element grain, so it
runs as one parallel region) with 1 and with N threads; the difference is the price of one parallel region, which a
training step pays a few thousand times. It depends on ``OMP_WAIT_POLICY`` (PASSIVE: idle threads sleep and must be
woken; ACTIVE: they spin) and on the machine (waking a halted virtual CPU is slow).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def worker(a) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    trainer = C.simcse_trainer(a.model, bf16=None)  # bf16 only where native (emulated bf16 is ~1000x slower)
    batches = trainer.epoch_batches(0)

    def step(idx) -> None:  # the trainer's own step: views, forward, loss, backward, clip, AdamW, schedule
        trainer.train_step(idx)

    self_ms: dict[int, collections.Counter] = {1: collections.Counter(), a.threads: collections.Counter()}
    wall: dict[int, float] = collections.defaultdict(float)
    timed = batches[a.warmup : a.warmup + a.steps]
    with trainer.stepping():
        for idx in batches[: a.warmup]:
            step(idx)
        for _ in range(a.rounds):
            for threads in (1, a.threads):
                torch.set_num_threads(threads)
                step(batches[0])  # the new thread count's first step (OpenMP team start-up) is not timed
                t = time.perf_counter()
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    for idx in timed:
                        step(idx)
                wall[threads] += time.perf_counter() - t
                for event in prof.key_averages():
                    self_ms[threads][event.key] += event.self_cpu_time_total / 1000
    n = a.rounds * len(timed)
    return {"region_us": region_cost(a.threads), "threads": a.threads, "steps": n, "wall_ms": {str(k): v * 1000 / n for k, v in wall.items()},
            "self_ms": {str(k): {op: ms / n for op, ms in c.items()} for k, c in self_ms.items()}}


def region_cost(threads: int, reps: int = 2000) -> dict:
    """Median microseconds of one 64k-element multiply with 1 and with ``threads`` threads."""
    import statistics

    import torch

    x = torch.randn(65536)
    out = {}
    for n in (1, threads):
        torch.set_num_threads(n)
        for _ in range(100):
            x * 2
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(reps):
                x * 2
            runs.append((time.perf_counter() - t) / reps * 1e6)
        out[str(n)] = statistics.median(runs)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="minilm")
    p.add_argument("--threads", type=int, default=2, help="compared with 1 thread")
    p.add_argument("--steps", type=int, default=15, help="timed steps per block")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2, help="alternate 1 and N threads this many times")
    p.add_argument("--top", type=int, default=20, help="operators shown")
    C.add_omp_flag(p, training=True)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    C.set_omp(a)
    if a.worker:
        print(json.dumps(worker(a)))
        return
    if a.threads < 2:
        sys.exit("--threads must be at least 2 (it is compared with 1 thread)")
    info = C.machine()
    print(C.machine_line(info))
    res = C.run_worker([str(Path(__file__).resolve()), "--worker", "--model", a.model, "--threads", str(a.threads),
                        "--steps", str(a.steps), "--warmup", str(a.warmup), "--rounds", str(a.rounds)])
    n = str(a.threads)
    one, many = res["self_ms"]["1"], res["self_ms"][n]
    w1, wn = res["wall_ms"]["1"], res["wall_ms"][n]
    print(f"{a.model}, batch 64 x 2 views, max length 32, {res['steps']} steps per thread count "
          f"({a.rounds} alternating rounds), profiler on")
    print(f"wall ms/step: 1 thread {w1:.0f}, {n} threads {wn:.0f}: x{w1 / wn:.2f}")
    head = f"{'operator':<40} {'1 thread ms':>12} {n + ' threads ms':>13} {'speed-up':>9} {'share at ' + n:>10}"
    print(head)
    print("-" * len(head))
    total_n = sum(many.values())
    for op in sorted(one, key=lambda k: -one[k])[: a.top]:
        t1, tn = one[op], many.get(op, 0.0)
        speed = f"x{t1 / tn:.2f}" if tn > 0 else "-"
        print(f"{op[:40]:<40} {t1:12.1f} {tn:13.1f} {speed:>9} {100 * tn / total_n:9.1f}%")
    groups = {"GEMMs (mm, addmm)": ("aten::mm", "aten::addmm")}
    rest1 = sum(one.values()) - sum(one.get(op, 0) for ops in groups.values() for op in ops)
    restn = total_n - sum(many.get(op, 0) for ops in groups.values() for op in ops)
    for name, ops in groups.items():
        g1, gn = sum(one.get(op, 0) for op in ops), sum(many.get(op, 0) for op in ops)
        print(f"{name:<40} {g1:12.1f} {gn:13.1f} {'x%.2f' % (g1 / gn):>9} {100 * gn / total_n:9.1f}%")
    print(f"{'everything else':<40} {rest1:12.1f} {restn:13.1f} {'x%.2f' % (rest1 / restn):>9} "
          f"{100 * restn / total_n:9.1f}%")
    r = res["region_us"]
    print(f"one 64k-element multiply: {r['1']:.1f} us with 1 thread, {r[n]:.1f} us with {n} threads "
          f"(OMP_WAIT_POLICY {info['omp_wait_policy']})")
    print(f"(load now {C.machine()['loadavg_1m']:.2f}; self times are the calling thread's, nested operators excluded)")


if __name__ == "__main__":
    main()
