"""ONNX serving: speed and fidelity of decone's ONNX export against the torch encoder.

    python benchmarks/encode_quality_onnx.py                      # all-MiniLM-L6-v2, every STS-B sentence (~16k)
    python benchmarks/encode_quality_onnx.py --model raw-mini --n 5000

The model is exported once (``decone.export.export_onnx``, fp32 plus dynamic int8 for this CPU) into a temporary copy.
The sentences are the distinct sentences of STS-B train+dev+test (shared/data), in file order, up to ``--n``.
Configurations, each timed over ``--rounds`` (median):

* ``torch-fp32``: ``Encoder.encode`` (the reference);
* ``onnx-fp32``, ``onnx-int8``: the same Encoder with its transformer in ONNX Runtime (``decone.onnx_backend``): same
  length-sorted batches and pooling, one core per batch in ``torch.get_num_threads()`` workers;
* ``st-onnx-fp32``, ``st-onnx-int8``: ``SentenceTransformer(folder, backend="onnx")`` on the same files, where
  sentence-transformers' ONNX backend (optimum-onnx) is installed.

Reported: sentences/s, the worst and mean row-wise cosine to ``torch-fp32``, and STS-B test Spearman x100 (cosine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def sts_sentences(n: int) -> list[str]:
    from decone.evaluate.sts import read_sts_benchmark

    root = C.shared() / "data" / "sts" / "STSBenchmark"
    seen: dict[str, None] = {}
    for split in ("train", "dev", "test"):
        for s1, s2, _ in read_sts_benchmark(root / f"sts-{split}.csv"):
            seen.setdefault(s1)
            seen.setdefault(s2)
    return list(seen)[:n]


def spearman_test(encode) -> float:
    from scipy.stats import spearmanr

    from decone.evaluate.sts import read_sts_benchmark

    pairs = read_sts_benchmark(C.shared() / "data" / "sts" / "STSBenchmark" / "sts-test.csv")
    uniq = list(dict.fromkeys(s for p in pairs for s in p[:2]))
    emb = encode(uniq)
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    index = {s: i for i, s in enumerate(uniq)}
    cos = [float(emb[index[a]] @ emb[index[b]]) for a, b, _ in pairs]
    return 100.0 * float(spearmanr(cos, [p[2] for p in pairs]).correlation)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm", help="minilm, raw-mini or a folder")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()

    import torch

    from decone.encoder import Encoder
    from decone.export import cpu_arch, export_onnx

    texts = sts_sentences(args.n)
    tmp = Path(tempfile.mkdtemp(prefix="decone-onnx-bench-"))
    folder = tmp / "model"
    t0 = time.perf_counter()
    files = export_onnx(C.model_path(args.model), quantize="int8", output=folder)
    export_s = time.perf_counter() - t0
    int8_name = files[-1].name

    configs: dict = {
        "torch-fp32": lambda: Encoder.load(folder, device="cpu"),
        "onnx-fp32": lambda: Encoder.load(folder, backend="onnx"),
        "onnx-int8": lambda: Encoder.load(folder, backend="onnx", onnx_file="int8"),
    }
    st_note = None
    try:
        import optimum.onnxruntime  # noqa: F401
        from sentence_transformers import SentenceTransformer

        configs["st-onnx-fp32"] = lambda: SentenceTransformer(str(folder), backend="onnx", device="cpu")
        configs["st-onnx-int8"] = lambda: SentenceTransformer(
            str(folder), backend="onnx", device="cpu", model_kwargs={"file_name": f"onnx/{int8_name}"})
    except ImportError as exc:
        st_note = f"sentence-transformers ONNX backend not measured: {exc} (needs optimum-onnx)"

    results: dict = {"machine": {**C.machine(), "quant_arch": cpu_arch(),
                                 "mkldnn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())},
                     "model": C.model_path(args.model), "sentences": len(texts), "export_seconds": round(export_s, 1),
                     "files": {f.name: f.stat().st_size for f in files}, "configs": {}, "note": st_note}
    ref = None
    for name, make in configs.items():
        model = make()
        encode = (lambda xs, m=model: m.encode(xs, batch_size=args.batch_size)) if not name.startswith("st-") else \
            (lambda xs, m=model: m.encode(xs, batch_size=args.batch_size, convert_to_numpy=True))
        encode(texts[:64])  # warm-up
        times, emb = [], None
        for _ in range(args.rounds):
            t = time.perf_counter()
            emb = np.asarray(encode(texts), dtype=np.float32)
            times.append(time.perf_counter() - t)
        if ref is None:
            ref = emb
        cos = (emb * ref).sum(1) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(ref, axis=1))
        row = {"sentences_per_s": round(len(texts) / statistics.median(times), 1),
               "worst_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
               "stsb_test_spearman": round(spearman_test(encode), 2)}
        results["configs"][name] = row
        print(f"{name:14s} {row['sentences_per_s']:9.1f} sent/s  worst cos {row['worst_cosine']:.6f}  "
              f"mean cos {row['mean_cosine']:.6f}  STS-B test {row['stsb_test_spearman']:.2f}", flush=True)
        del model
    if st_note:
        print(st_note)
    print(json.dumps({k: v for k, v in results.items() if k != "configs"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
