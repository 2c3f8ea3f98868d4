"""The GPU path, measured in one command on a CUDA machine: the GPU tests, then training and encoding against
sentence-transformers on the same GPU.

    python benchmarks/gpu.py                         # tests, training (batch 64 and 256), encoding 20k sentences
    python benchmarks/gpu.py --models minilm,raw-mini --steps 100 --skip-tests
    python benchmarks/gpu.py --plan                  # what it would run (works without a GPU)

1. ``pytest -m gpu``: bf16 autocast, fused AdamW and SDPA attention in training, GradCache's CUDA RNG replay, and
   DDP over NCCL where the machine has 2+ GPUs (tests/test_gpu.py, tests/test_gradcache.py).
2. Training, per model and batch size: decone ``simcse`` (its CLI path: bf16 autocast where the GPU has it, fused
   AdamW) against sentence-transformers' SimCSE recipe (MultipleNegativesRankingLoss over (s, s), its trainer) in
   fp32 and with ``bf16=True``; ``--steps`` timed steps after ``--warmup``, sentences/s = batch per step.
3. Encoding ``--encode`` sentences of the STS-B 10k sample (repeated): decone ``Encoder.encode`` (bf16 autocast)
   against ``SentenceTransformer.encode`` in fp32 and in bf16 weights.

Without a CUDA device it says so in one line and exits 2 (``--plan`` still prints the plan).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/test_gpu.py", "tests/test_gradcache.py"]


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="minilm", help="comma-separated: minilm, raw-mini or model folders [minilm]")
    p.add_argument("--batch-sizes", default="64,256", help="training batch sizes, comma-separated [64,256]")
    p.add_argument("--steps", type=int, default=50, help="timed training steps [50]")
    p.add_argument("--warmup", type=int, default=10, help="untimed training steps first [10]")
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--encode", type=int, default=20000, help="sentences to encode (0: skip) [20000]")
    p.add_argument("--skip-tests", action="store_true", help="do not run the GPU tests first")
    p.add_argument("--plan", action="store_true", help="print what would run and exit (no GPU needed)")
    a = p.parse_args(argv)
    try:
        a.batch_sizes = [int(x) for x in a.batch_sizes.split(",") if x.strip()]
    except ValueError:
        p.error(f"--batch-sizes {a.batch_sizes!r}: expected integers separated by commas")
    if not a.batch_sizes or min(a.batch_sizes) < 2:
        p.error("--batch-sizes: each must be >= 2 (in-batch negatives)")
    if a.steps < 1 or a.warmup < 1 or a.encode < 0:
        p.error("--steps and --warmup must be >= 1 (timing starts after a warm-up step), --encode >= 0")
    a.models = [m for m in a.models.split(",") if m.strip()]
    return a


def plan(a) -> list[str]:
    out = [] if a.skip_tests else [f"pytest -m gpu {' '.join(TESTS)}"]
    for m in a.models:
        for b in a.batch_sizes:
            out.append(f"train {m} batch {b}: decone simcse vs sentence-transformers fp32 and bf16, "
                       f"{a.warmup} + {a.steps} steps")
        if a.encode:
            out.append(f"encode {m}: {a.encode:,} sentences, decone bf16 vs sentence-transformers fp32 and bf16")
    return out


def _sync():
    import torch

    torch.cuda.synchronize()


def train_decone(model: str, batch: int, a, sents: list[str]) -> float:
    from decone.data import Dataset
    from decone.train import TrainConfig, fit

    marks = {}

    class Clock:
        def on_step_end(self, state):
            if state.step in (a.warmup, a.warmup + a.steps):
                _sync()
                marks[state.step] = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        fit(TrainConfig(method="simcse", model=C.model_path(model), output=out, batch_size=batch,
                        max_length=a.max_length, max_steps=a.warmup + a.steps, save_every=10**9,
                        log_every=10**9, seed=42), callbacks=[Clock()], data=Dataset([(s,) for s in sents], "10k"))
    return a.steps * batch / (marks[a.warmup + a.steps] - marks[a.warmup])


def train_st(model: str, batch: int, a, sents: list[str], bf16: bool) -> float:
    from sentence_transformers import SentenceTransformer
    from transformers import TrainerCallback

    st = SentenceTransformer(C.model_path(model), device="cuda")
    st.max_seq_length = a.max_length
    marks = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step in (a.warmup, a.warmup + a.steps):
                _sync()
                marks[state.global_step] = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        trainer, _ = C.st_simcse_trainer(st, sents, out, batch, a.warmup + a.steps, bf16, callbacks=[Clock()],
                                         use_cpu=False)
        trainer.train()
    return a.steps * batch / (marks[a.warmup + a.steps] - marks[a.warmup])


def encode_all(model: str, a, sents: list[str]) -> dict[str, float]:
    import torch
    from sentence_transformers import SentenceTransformer

    from decone.encoder import Encoder

    texts = (sents * (a.encode // len(sents) + 1))[: a.encode]
    out = {}
    enc = Encoder.load(C.model_path(model), device="cuda")
    enc.encode(texts[:512], bf16=True)
    _sync()
    t = time.perf_counter()
    enc.encode(texts, bf16=True)
    _sync()
    out["decone bf16"] = len(texts) / (time.perf_counter() - t)
    for name, kwargs in (("st fp32", {}), ("st bf16", {"model_kwargs": {"torch_dtype": torch.bfloat16}})):
        st = SentenceTransformer(C.model_path(model), device="cuda", **kwargs)
        st.encode(texts[:512])
        _sync()
        t = time.perf_counter()
        st.encode(texts, batch_size=64)
        _sync()
        out[name] = len(texts) / (time.perf_counter() - t)
    return out


def main(argv=None) -> int:
    a = parse(argv)
    steps = plan(a)
    if a.plan:
        print("\n".join(steps))
        return 0
    import torch

    if not torch.cuda.is_available():
        print("error: no CUDA device here: benchmarks/gpu.py measures the GPU path only (see --plan)", file=sys.stderr)
        return 2
    print(f"GPU: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}, torch {torch.__version__}, "
          f"bf16 {torch.cuda.is_bf16_supported()}")
    failed = 0
    if not a.skip_tests:
        failed = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", *TESTS], cwd=ROOT).returncode
        print(f"GPU tests: {'passed' if failed == 0 else f'FAILED (exit {failed}); the measurements follow anyway'}")
    sents = [s for s in (C.shared() / C.SENTS_10K).read_text(encoding="utf-8").splitlines() if s.strip()]
    print("\n| model | batch | decone sent/s | st fp32 | st bf16 | decone / st fp32 | decone / st bf16 |")
    print("|---|---|---|---|---|---|---|")
    for m in a.models:
        for b in a.batch_sizes:
            d, f, h = train_decone(m, b, a, sents), train_st(m, b, a, sents, False), train_st(m, b, a, sents, True)
            print(f"| {m} | {b} | {d:,.0f} | {f:,.0f} | {h:,.0f} | {d / f:.2f}x | {d / h:.2f}x |", flush=True)
    if a.encode:
        print("\n| model | decone bf16 sent/s | st fp32 | st bf16 | decone / fastest st |")
        print("|---|---|---|---|---|")
        for m in a.models:
            r = encode_all(m, a, sents)
            best = max(r["st fp32"], r["st bf16"])
            print(f"| {m} | {r['decone bf16']:,.0f} | {r['st fp32']:,.0f} | {r['st bf16']:,.0f} | "
                  f"{r['decone bf16'] / best:.2f}x |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
