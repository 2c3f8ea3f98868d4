"""Encoding throughput: ``decone encode`` (``Encoder.encode``) against ``SentenceTransformer.encode``.

    python benchmarks/encode_throughput.py                     # 20k sentences, all-MiniLM-L6-v2
    python benchmarks/encode_throughput.py --n 5000 --rounds 3

The sentences are a fixed random sample (seed 0) of shared/data/corpus/public_sentences.txt.gz, truncated at the
model's own max length (256 tokens for all-MiniLM-L6-v2; few come near it). Each configuration runs in its own
subprocess (alternating over ``--rounds``), on the same model folder:

* ``st-default``: ``SentenceTransformer(model).encode(sentences)`` with its defaults (batch 32, fp32);
* ``decone-fp32``: ``Encoder.encode(sentences)`` with its defaults (batch 64, fp32);
* ``decone-bf16``: ``Encoder.encode(sentences, bf16=True)``: what ``decone encode --bf16`` runs.

Reported: sentences/s (median and range over rounds), the speed-up over ``st-default``, and the agreement of every
configuration's embeddings with the fp32 sentence-transformers ones: the minimum (and mean) row-wise cosine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

CONFIGS = ("st-default", "decone-fp32", "decone-bf16")


def sentences(n: int) -> list[str]:
    with gzip.open(C.shared() / C.CORPUS, "rt", encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    lines = [x for x in lines if x]
    return random.Random(0).sample(lines, n)


def worker(a) -> dict:
    import numpy as np
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    texts = sentences(a.n)
    path = C.model_path(a.model)
    counter = C.TokenCounter()
    if a.worker == "st-default":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(path, device="cpu")
        counter.attach(model[0].auto_model)
        model.encode(texts[:256])  # warm-up
        counter.__init__()
        t, c = time.perf_counter(), time.process_time()
        emb = model.encode(texts)
        seconds, cpu_seconds = time.perf_counter() - t, time.process_time() - c
        hf = model[0].auto_model
    else:
        from decone import Encoder

        enc = Encoder.load(path, device="cpu")
        counter.attach(enc.model)
        bf16 = a.worker == "decone-bf16"
        enc.encode(texts[:256], bf16=bf16)
        counter.__init__()
        t, c = time.perf_counter(), time.process_time()
        emb = enc.encode(texts, bf16=bf16, batch_size=a.batch_size or 64)
        seconds, cpu_seconds = time.perf_counter() - t, time.process_time() - c
        hf = enc.model
    np.save(a.out, np.asarray(emb, dtype=np.float32))
    shape = C.encoder_shape(hf)
    real, padded, sum_sq, _ = counter.snapshot()
    flops = C.infer_flops(shape, real, sum_sq)
    return {"config": a.worker, "seconds": seconds, "sentences_per_s": len(texts) / seconds,
            "cpu_seconds": cpu_seconds, "sentences_per_cpu_s": len(texts) / cpu_seconds, "real_tokens": real,
            "padded_tokens": padded, "flops_per_s": flops / seconds, "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20000, help="sentences")
    p.add_argument("--model", default="minilm")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=0, help="decone's batch size (0: its default, 64)")
    p.add_argument("--threads", type=int, default=0, help="torch threads in every worker (0: torch's default)")
    C.add_omp_flag(p)
    p.add_argument("--json")
    p.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args()
    C.set_omp(a)
    if a.worker:
        print(json.dumps(worker(a)))
        return

    import numpy as np
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    info = C.machine()
    print(C.machine_line(info))
    peak = C.gemm_peak()
    print(f"GEMM 2048^3 peak: {C.peak_line(peak)}")
    configs = a.configs.split(",")
    if not C.native_bf16() and "decone-bf16" in configs:
        print(C.NO_BF16)
        configs = [c for c in configs if c != "decone-bf16"]
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {c: str(Path(tmp) / f"{c}.npy") for c in configs}
        for r in range(a.rounds):
            for c in configs:
                res = C.run_worker([str(Path(__file__).resolve()), "--worker", c, "--n", str(a.n), "--model", a.model,
                                    "--batch-size", str(a.batch_size), "--threads", str(a.threads),
                                    "--out", files[c]])
                results.append(res)
                print(f"  round {r + 1}/{a.rounds} {c:<12} {res['sentences_per_s']:9.1f} sent/s", flush=True)
        emb = {c: np.load(files[c]) for c in configs}
    ref_name = "st-default" if "st-default" in emb else configs[0]
    ref = emb[ref_name] / np.linalg.norm(emb[ref_name], axis=1, keepdims=True)
    print()
    print(f"{a.n:,} sentences, model {a.model}; cosine against {ref_name} (fp32); load now {C.machine()['loadavg_1m']:.2f}")
    print("wall: sentences per wall-clock second; cpu: per CPU-second of the process (little disturbed by other load)")
    head = f"{'config':<12} {'wall sentences/s':>30} {'vs st':>6} {'cpu sent/s':>10} {'vs st':>6} {'GFLOP/s':>8} " \
           f"{'min cos':>9} {'mean cos':>9} " \
           f"{'tokens':>10} {'padded':>10}"
    print(head)
    print("-" * len(head))
    med = {c: statistics.median(x["sentences_per_s"] for x in results if x["config"] == c) for c in configs}
    med_cpu = {c: statistics.median(x["sentences_per_cpu_s"] for x in results if x["config"] == c) for c in configs}
    for c in configs:
        rows = [x for x in results if x["config"] == c]
        e = emb[c] / np.linalg.norm(emb[c], axis=1, keepdims=True)
        cos = (e * ref).sum(axis=1)
        speed = f"{med[c] / med['st-default']:.2f}x" if "st-default" in med else "-"
        speed_cpu = f"{med_cpu[c] / med_cpu['st-default']:.2f}x" if "st-default" in med else "-"
        fl = statistics.median(x["flops_per_s"] for x in rows)
        print(f"{c:<12} {C.spread([x['sentences_per_s'] for x in rows]):>30} {speed:>6} {med_cpu[c]:>10.1f} "
              f"{speed_cpu:>6} {C.gflops(fl):>8} "
              f"{cos.min():9.5f} {cos.mean():9.6f} {rows[0]['real_tokens']:>10,} {rows[0]['padded_tokens']:>10,}")
    if a.json:
        Path(a.json).write_text(json.dumps({"machine": info, "gemm_peak": peak, "results": results}, indent=2))


if __name__ == "__main__":
    main()
