"""Training on corpora of 10k, 1M and 10M lines: time to the first step, peak RSS and sentences/s.

    python benchmarks/data_scale.py                       # 10k, 1M, 10M lines; MiniLM; 30 steps of batch 64
    python benchmarks/data_scale.py --lines 10000,1000000 --steps 20 --model raw-mini

Each corpus is drawn (seeded, with replacement) from the sentences of ``shared/data/corpus/public_sentences.txt.gz``
and written once under ``--work`` (the 10M-line file is about 0.9 GB). Each size trains ``decone train simcse`` in a
fresh process: the time to the first step counts from the process start (imports, model load, reading the data, the
batch order) to the end of step 1; sentences/s is over the steps after the first; peak RSS is the process's
``ru_maxrss``. Files of at least 32 MiB are read through decone's byte-offset index (``decone.data.LineFile``),
smaller ones into memory. Targets (issue: performance round 2): the 10M-line run reaches its first step in <= 10 s,
and its peak RSS is <= 1.5x that of the 10k-line run, at the same throughput.
"""

from __future__ import annotations

import time

T_PROCESS = time.perf_counter()  # before any heavy import: the worker's clock starts here

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def corpus_file(work: Path, n_lines: int, seed: int = 0) -> Path:
    """``n_lines`` sentences of 4-40 words sampled with replacement from the shared corpus (written once)."""
    import numpy as np

    path = work / f"corpus_{n_lines}.txt"
    if path.exists():
        return path
    work.mkdir(parents=True, exist_ok=True)
    with gzip.open(C.shared() / C.CORPUS, "rt", encoding="utf-8") as f:
        pool = [line.strip() for line in f if 4 <= len(line.split()) <= 40]
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for start in range(0, n_lines, 1_000_000):
            pick = rng.integers(len(pool), size=min(1_000_000, n_lines - start))
            out.write("\n".join(pool[i] for i in pick) + "\n")
    tmp.rename(path)
    return path


def worker(args) -> None:
    from decone.train import TrainConfig, Trainer

    marks: dict[int, float] = {}
    counter = C.TokenCounter()
    counts: dict[int, tuple] = {}

    class Clock:
        def on_train_begin(self, state):
            counter.attach(state.encoder.model)

        def on_step_end(self, state):
            marks[state.step] = time.perf_counter()
            counts[state.step] = (counter.real, counter.padded)

    cfg = TrainConfig(method="simcse", model=C.model_path(args.model), data=args.worker, output=args.output,
                      overwrite=True, max_steps=args.steps, batch_size=args.batch_size, max_length=32, seed=0,
                      save_every=10**9, log_every=10**9)
    trainer = Trainer(cfg, callbacks=[Clock()])
    trainer.run()
    steps = sorted(marks)
    seconds = marks[steps[-1]] - marks[steps[0]] if len(steps) > 1 else None
    rate = (len(steps) - 1) * args.batch_size / seconds if seconds else None
    real, padded = (b - a for a, b in zip(counts[steps[0]], counts[steps[-1]]))
    print(json.dumps({"lines": len(trainer.data), "lazy": type(trainer.data.examples).__name__ == "LineFile",
                      "first_step_s": round(marks[steps[0]] - T_PROCESS, 2), "sentences_per_s": rate and round(rate, 1),
                      "real_tokens_per_s": seconds and round(real / seconds, 1),
                      "padding_share": round(1 - real / padded, 4) if padded else None,
                      "peak_rss_mb": round(C.peak_rss_mb(), 1), "precision": "bf16" if trainer.use_bf16 else "fp32"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", default="10000,1000000,10000000", help="corpus sizes, comma-separated")
    parser.add_argument("--model", default="minilm", help="minilm, raw-mini or a folder [minilm]")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--work", default="/tmp/decone-data-scale", help="where the corpora and outputs go")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    sizes = [int(x) for x in args.lines.split(",")]
    if any(n < 2 for n in sizes) or args.steps < 2:
        parser.error("--lines need >= 2 each and --steps >= 2 (sentences/s is measured after the first step)")
    work = Path(args.work)
    print(C.machine_line(C.machine()))
    rows = []
    for n in sizes:
        t = time.perf_counter()
        path = corpus_file(work, n)
        made = time.perf_counter() - t
        result = C.run_worker([__file__, "--worker", str(path), "--output", str(work / f"out_{n}"), "--model",
                               args.model, "--steps", str(args.steps), "--batch-size", str(args.batch_size)])
        rows.append({"n": n, "bytes": path.stat().st_size, "made_s": made, **result})
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    print(f"\n{args.model}, simcse, batch {args.batch_size}, max_len 32, {args.steps} steps; corpora in {work}")
    print("| lines | file | reader | first step (s) | peak RSS (MB) | RSS vs smallest | sentences/s | vs smallest "
          "| real tokens/s | vs smallest | padding |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']:,} | {r['bytes'] / 2**20:,.0f} MiB | {'byte-offset index' if r['lazy'] else 'in memory'} | "
              f"{r['first_step_s']:.1f} | {r['peak_rss_mb']:,.0f} | {r['peak_rss_mb'] / base['peak_rss_mb']:.2f}x | "
              f"{r['sentences_per_s']:,.1f} | {r['sentences_per_s'] / base['sentences_per_s']:.2f}x | "
              f"{r['real_tokens_per_s']:,.0f} | {r['real_tokens_per_s'] / base['real_tokens_per_s']:.2f}x | "
              f"{100 * r['padding_share']:.1f}% |")
    print("sentences/s moves with the lengths of the sentences the timed steps happen to draw; real tokens/s (padding "
          "not counted) is the like-for-like throughput")
    big = rows[-1]
    print(f"\ntargets for the largest ({big['n']:,} lines): first step {big['first_step_s']:.1f} s (<= 10 s: "
          f"{'met' if big['first_step_s'] <= 10 else 'NOT met'}); peak RSS {big['peak_rss_mb'] / base['peak_rss_mb']:.2f}x "
          f"the smallest (<= 1.5x: {'met' if big['peak_rss_mb'] <= 1.5 * base['peak_rss_mb'] else 'NOT met'}); "
          f"throughput {big['sentences_per_s'] / base['sentences_per_s']:.2f}x in sentences/s, "
          f"{big['real_tokens_per_s'] / base['real_tokens_per_s']:.2f}x in real tokens/s ({big['precision']})")


if __name__ == "__main__":
    main()
