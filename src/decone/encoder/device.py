"""Where and in which precision the encoder runs."""

from __future__ import annotations

import torch


def has_bf16_cpu() -> bool:
    """True where the CPU has native bf16 (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        return False


def resolve_bf16(bf16: bool | None, device: torch.device) -> bool:
    """``None`` means: bf16 on a GPU that supports it, or on a CPU with native bf16."""
    if bf16 is not None:
        return bf16
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and has_bf16_cpu()


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
