"""Does decone's CPU dropout (``--fast-dropout``, the default) train as well as torch's own (``--torch-dropout``)?

    python benchmarks/dropout_quality.py                 # raw-mini simcse, 400 steps, seeds 42 and 43, ~10 min
    python benchmarks/dropout_quality.py --steps 50 --seeds 42

Trains unsupervised SimCSE on decone-raw-mini with RESULTS.md's settings (25,600 corpus sentences, mean pooling,
lr 1e-4, batch 64, bf16 where the CPU has it) once per dropout implementation and seed, each in this process one
after the other, then evaluates all seven STS tasks (Spearman x 100, SentEval "all", averaged). Prints each run,
the mean per implementation and the training throughput. The two implementations draw different random masks,
so single seeds differ by noise; the question is whether the means differ by more than the seeds do.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seeds", default="42,43")
    p.add_argument("--sentences", type=int, default=25_600)
    a = p.parse_args()

    from decone.encoder import Encoder
    from decone.evaluate import sts
    from decone.train import TrainConfig, fit
    from results import corpus_sentences

    print(C.machine_line(C.machine()))
    seeds = [int(s) for s in a.seeds.split(",")]
    data = sts.load_sts(C.shared() / "data")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = corpus_sentences(C.shared(), a.sentences, Path(tmp))
        for seed in seeds:
            for name, fast in (("torch", False), ("fast", True)):
                out = Path(tmp) / f"{name}-{seed}"
                t = time.perf_counter()
                summary = fit(TrainConfig(method="simcse", model=C.model_path("raw-mini"), data=str(corpus), output=str(out),
                                          max_steps=a.steps, pooling="mean", lr=1e-4, seed=seed, fast_dropout=fast,
                                          save_every=10**9))
                train_s = time.perf_counter() - t
                score = sts.evaluate_sts(Encoder.load(out), data=data, bf16=None)["avg"]["all"]
                rows.append({"dropout": name, "seed": seed, "sts_avg": score, "train_s": train_s,
                             "sentences_per_s": summary["sentences_per_s"], "final_loss": summary["final_loss"]})
                r = rows[-1]
                print(f"  {name:5s} seed {seed}: STS avg {score:6.2f}  final loss {r['final_loss']:.4f}  "
                      f"{r['sentences_per_s']:6.1f} sentences/s  ({train_s:.0f} s)", flush=True)
    print(f"\nsimcse on decone-raw-mini, {a.steps} steps, batch 64, seeds {a.seeds}:")
    for name in ("torch", "fast"):
        got = [r for r in rows if r["dropout"] == name]
        scores = [r["sts_avg"] for r in got]
        print(f"  --{name}-dropout  STS avg mean {statistics.mean(scores):6.2f} (runs: {', '.join(f'{x:.2f}' for x in scores)})  "
              f"{statistics.mean(r['sentences_per_s'] for r in got):6.1f} sentences/s")


if __name__ == "__main__":
    main()
