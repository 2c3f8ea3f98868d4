"""The optimizer and the learning-rate schedule: AdamW (fused where available), linear warm-up, linear decay."""

from __future__ import annotations

import torch
from torch import nn


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; no weight decay on biases and norms."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, **adamw_kernel(device))


def linear_schedule(optimizer, total: int, warmup_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_ratio * total`` steps, then linear decay to 0 at ``total``."""
    warmup = int(warmup_ratio * total)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )


def adamw_kernel(device: torch.device) -> dict:
    """AdamW's fused kernel (one pass over each tensor) where this PyTorch has it for the device; same arithmetic as
    the default per-tensor loop, several times faster on CPU, where the default is the slow per-tensor loop."""
    try:
        from torch.optim.optimizer import _get_fused_kernels_supported_devices  # private; absent in some builds

        return {"fused": True} if device.type in _get_fused_kernels_supported_devices() else {}
    except Exception:  # an older or unusual build: keep the default
        return {}
