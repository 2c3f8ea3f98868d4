"""The GEMM ceiling of a training step: FLOP/s of the matrix products a BERT layer's training step runs, at the
shapes it runs them, against the 2048^3 GEMM peak that the training benchmarks quote.

    python benchmarks/gemm_shapes.py                         # all-MiniLM-L6-v2's shapes: hidden 384, FFN 1536
    python benchmarks/gemm_shapes.py --tokens 3500 --hidden 768 --ffn 3072     # BERT-base at a longer batch

Each linear layer y = x W^T + b (x: tokens x d_in, W: d_out x d_in) costs three GEMMs in a training step: the forward
product, the input gradient dY W (tokens x d_out x d_in) and the weight gradient dY^T x (d_out x tokens x d_in).
A BERT layer has four linears of d_in = d_out = hidden (Q, K, V, the attention output) and the FFN's two
(hidden -> ffn, ffn -> hidden). ``--tokens`` is the real (unpadded) tokens of a step's forward, both SimCSE views
together: about 1,700 for batch 64 at max length 32 on the Mirror-BERT sentences (train_throughput.py prints it).

The script prints each GEMM's GFLOP/s and the FLOP-weighted rate of the whole set, i.e. what a step made of nothing
but these GEMMs, run one after another as autograd runs them, would reach, as a fraction of the 2048^3 peak: the
ceiling of "% of the GEMM peak" for that model and batch. bf16 is timed only where the CPU has it natively.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def shapes(tokens: int, hidden: int, ffn: int) -> list[tuple[str, int, int, int, int]]:
    """(name, M, K, N, count per layer) of one BERT layer's training GEMMs: C[M, N] = A[M, K] B[K, N]."""
    out = []
    for name, d_in, d_out, count in (("qkv+out", hidden, hidden, 4), ("ffn in", hidden, ffn, 1), ("ffn out", ffn, hidden, 1)):
        out += [(f"{name} forward", tokens, d_in, d_out, count),
                (f"{name} input grad", tokens, d_out, d_in, count),
                (f"{name} weight grad", d_out, tokens, d_in, count)]
    return out


def time_gemm(m: int, k: int, n: int, dtype, seconds: float = 0.4) -> float:
    """Best-of-5 GFLOP/s of torch.mm at [m, k] x [k, n] (the weight-gradient layout transposed as autograd does)."""
    import torch

    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        torch.mm(a, b)
    best = 0.0
    for _ in range(5):
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 5:
            torch.mm(a, b)
            reps += 1
        best = max(best, 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9)
    return best


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=1711, help="real tokens in a step's forward, all views [1711]")
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--ffn", type=int, default=1536)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = p.parse_args(argv)
    if min(a.tokens, a.hidden, a.ffn) < 1:
        p.error("--tokens, --hidden and --ffn must be positive")
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    m = C.machine()
    print(f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']} ({torch.get_num_threads()} "
          f"threads), native bf16: {C.native_bf16()}")
    dtypes = [("fp32", torch.float32)] + ([("bf16", torch.bfloat16)] if C.native_bf16() else [])
    for label, dtype in dtypes:
        peak = time_gemm(2048, 2048, 2048, dtype, seconds=1.5)
        print(f"\n{label}: 2048^3 peak {peak:.1f} GFLOP/s; tokens {a.tokens}, hidden {a.hidden}, ffn {a.ffn}")
        print(f"  {'GEMM':<22} {'M x K x N':>20} {'per layer':>9} {'GFLOP/s':>9} {'% peak':>7}")
        flops = seconds = 0.0
        for name, mm, k, n, count in shapes(a.tokens, a.hidden, a.ffn):
            rate = time_gemm(mm, k, n, dtype)
            f = 2 * mm * k * n * count
            flops, seconds = flops + f, seconds + f / (rate * 1e9)
            print(f"  {name:<22} {f'{mm} x {k} x {n}':>20} {count:>9} {rate:>9.1f} {100 * rate / peak:>6.0f}%")
        rate = flops / seconds / 1e9
        print(f"  all of a layer's training GEMMs, FLOP-weighted: {rate:.1f} GFLOP/s = {100 * rate / peak:.0f}% of the "
              f"2048^3 peak (the ceiling of a step's '% of peak' if it were nothing but these GEMMs)")


if __name__ == "__main__":
    main()
