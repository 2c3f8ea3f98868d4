"""What each change to decone's CPU training step is worth: the levers of docs/performance.md, one at a time.

    python benchmarks/train_ablation.py                        # all-MiniLM-L6-v2, 1 thread, 20 steps, 2 rounds
    python benchmarks/train_ablation.py --threads 2 --rounds 3

Each variant runs the trainer's step (``Trainable.compute_loss`` over both SimCSE views, backward, clipping, AdamW) on
the STS-B 10k sentences, batch 64, max length 32, in its own subprocess, over the same steps of the same epoch order:

* ``before``      : length grouping by characters, AdamW's default per-tensor loop (decone before this work), bf16;
* ``+fused``      : the same with AdamW(fused=True);
* ``+tokens``     : and length grouping by token counts (torch's dropout);
* ``+fast-dropout``: and dropout masks from a quarter of the random numbers (``decone.dropout``);
* ``+kept-grad``  : and the word-embedding gradient kept for the run and filled row by row (``decone.embedding_grad``;
  = decone now);
* ``now-fp32``    : decone now without bf16 autocast;
* ``no-grouping`` : decone now with random batches (padding to each batch's longest sentence, as the peer).

Sentences/s are per wall-clock second and per CPU-second (robust to other load); with ``--threads 1`` the two agree on
an idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

VARIANTS = {
    "before": dict(group="chars", optim="loop", bf16=True, dropout="torch", grad="dense"),
    "+fused": dict(group="chars", optim="fused", bf16=True, dropout="torch", grad="dense"),
    "+tokens": dict(group="tokens", optim="fused", bf16=True, dropout="torch", grad="dense"),
    "+fast-dropout": dict(group="tokens", optim="fused", bf16=True, dropout="fast", grad="dense"),
    "+kept-grad": dict(group="tokens", optim="fused", bf16=True, dropout="fast", grad="kept"),
    "now-fp32": dict(group="tokens", optim="fused", bf16=False, dropout="fast", grad="kept"),
    "no-grouping": dict(group="none", optim="fused", bf16=True, dropout="fast", grad="kept"),
}


def worker(a) -> dict:
    import contextlib

    import torch

    from decone.dropout import cpu_dropout
    from decone.embedding_grad import KeptEmbeddingGrad
    from decone.train import batch_order, token_lengths

    if a.threads:
        torch.set_num_threads(a.threads)
    v = dict(VARIANTS[a.worker], bf16=VARIANTS[a.worker]["bf16"] and C.native_bf16())
    enc, model, sents = C.simcse_trainable(a.model)
    lengths = token_lengths(enc, [(s,) for s in sents], 32) if v["group"] == "tokens" else [len(s) for s in sents]
    batches = batch_order(lengths, 64, 42, 0, v["group"] != "none")
    kw = {"fused": True} if v["optim"] == "fused" else {}
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-5, **kw)
    counter = C.TokenCounter().attach(enc.model)
    model.train()
    marks = []
    kept = KeptEmbeddingGrad.for_model(enc.model, enc.device) if v["grad"] == "kept" else KeptEmbeddingGrad(None)
    with cpu_dropout(enc.model) if v["dropout"] == "fast" else contextlib.nullcontext(), kept:
        for step, idx in enumerate(batches[: a.warmup + a.steps]):
            if step == a.warmup:
                marks.append((time.perf_counter(), time.process_time(), counter.snapshot()))
            texts = [sents[i] for i in idx]
            loss = model.compute_loss([texts, list(texts)], None, v["bf16"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            kept.zero_grad(optimizer)
    marks.append((time.perf_counter(), time.process_time(), counter.snapshot()))
    (t0, c0, k0), (t1, c1, k1) = marks
    n = a.steps * 64
    return {"variant": a.worker, "sentences_per_s": n / (t1 - t0), "sentences_per_cpu_s": n / (c1 - c0),
            "real_tokens_per_step": (k1[0] - k0[0]) / a.steps, "padded_tokens_per_step": (k1[1] - k0[1]) / a.steps,
            "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="minilm")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2)
    C.add_omp_flag(p, training=True)
    p.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    a = p.parse_args()
    C.set_omp(a)
    if a.worker:
        print(json.dumps(worker(a)))
        return
    info = C.machine()
    print(f"machine: {info['cpu']}, {info['logical_cpus']} logical CPUs, torch {info['torch']}, load "
          f"{info['loadavg_1m']:.2f}; {a.model}, batch 64, max length 32, {a.steps} steps after {a.warmup}, "
          f"{a.threads} thread(s), OMP_WAIT_POLICY {info['omp_wait_policy']}")
    names = a.variants.split(",")
    if not C.native_bf16():  # the ablation's steps then run in fp32: the bf16 variants would take hours
        print(C.NO_BF16 + "; every variant runs in fp32")
        for v in VARIANTS.values():
            v["bf16"] = False
        names = [n for n in names if n != "now-fp32"]
    results = []
    for r in range(a.rounds):
        for name in names:
            res = C.run_worker([str(Path(__file__).resolve()), "--worker", name, "--model", a.model, "--steps",
                                str(a.steps), "--warmup", str(a.warmup), "--threads", str(a.threads)])
            results.append(res)
            print(f"  round {r + 1} {name:<12} {res['sentences_per_s']:7.1f} sent/s, "
                  f"{res['sentences_per_cpu_s']:7.1f} per CPU-s", flush=True)
    print()
    head = f"{'variant':<12} {'wall sentences/s':>28} {'per CPU-second':>28} {'tokens/step':>11} {'padded/step':>11}"
    print(head)
    print("-" * len(head))
    base = None
    for name in names:
        rows = [x for x in results if x["variant"] == name]
        cpu = statistics.median(x["sentences_per_cpu_s"] for x in rows)
        base = base or cpu
        print(f"{name:<12} {C.spread([x['sentences_per_s'] for x in rows]):>28} "
              f"{C.spread([x['sentences_per_cpu_s'] for x in rows]):>28} {rows[0]['real_tokens_per_step']:>11.0f} "
              f"{rows[0]['padded_tokens_per_step']:>11.0f}   x{cpu / base:.2f}")
    print(f"(load now {C.machine()['loadavg_1m']:.2f}; last column: per-CPU-second speed relative to the first row)")


if __name__ == "__main__":
    main()
