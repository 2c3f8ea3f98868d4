"""Where an ONNX export lives in a model folder and which files it holds: shared by :mod:`decone.export`, which
writes them, and :mod:`decone.onnx_backend`, which runs them (neither imports the other's module for these)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from decone.errors import DeconeError

ONNX_DIR = "onnx"
ONNX_FILE = "model.onnx"
#: sentence-transformers' quantisation presets: architecture -> weight type (optimum's AutoQuantizationConfig)
QUANT_ARCHS = {"arm64": "QInt8", "avx2": "QUInt8", "avx512": "QInt8", "avx512_vnni": "QInt8"}


def require_onnx(what: str = "ONNX export") -> None:
    """Raise one line naming the missing package when the ``export`` extra is not installed."""
    missing = [name for name in ("onnx", "onnxruntime", "onnxscript") if not _importable(name)]
    if what != "ONNX export":
        missing = [m for m in missing if m == "onnxruntime"]
    if missing:
        raise DeconeError(f"{what} needs {', '.join(missing)}: pip install 'decone[export]'")


def cpu_arch() -> str:
    """This machine's quantisation preset: arm64, avx512_vnni, avx512 or avx2 (sentence-transformers' names)."""
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64") or machine.startswith("arm"):
        return "arm64"
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        flags = set()
    if "avx512_vnni" in flags or "amx_int8" in flags:
        return "avx512_vnni"
    if "avx512f" in flags and "avx512bw" in flags:
        return "avx512"
    return "avx2"


def quantized_file_name(arch: str) -> str:
    """``model_qint8_avx512_vnni.onnx`` etc., as ``export_dynamic_quantized_onnx_model`` names them."""
    return f"model_{QUANT_ARCHS[arch].lower()}_{arch}.onnx"


def needs_all_layers(enc) -> bool:
    """Whether the encoder's pooling reads more than the last layer (``first_last_avg``)."""
    module = getattr(enc, "pooling_module", None)
    if module is not None and hasattr(module, "needs_all_layers"):
        return bool(module.needs_all_layers)
    return enc.pooling == "first_last_avg"


def onnx_files(folder: str | os.PathLike) -> list[Path]:
    """The ``.onnx`` files under ``folder/onnx``, fp32 first."""
    d = Path(folder) / ONNX_DIR
    files = sorted(d.glob("*.onnx")) if d.is_dir() else []
    return sorted(files, key=lambda p: (p.name != ONNX_FILE, p.name))


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
