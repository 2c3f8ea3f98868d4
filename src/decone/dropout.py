"""Dropout for CPU training: torch's distribution from a quarter of the random numbers.

Contrastive methods such as SimCSE (Gao, Yao and Chen 2021, "SimCSE: Simple Contrastive Learning of Sentence
Embeddings") use dropout as their augmentation, so a BERT step draws a keep/drop decision for every hidden unit of
every token, several times per layer, and for every attention probability. On CPU torch draws each decision with
``bernoulli_`` from one Mersenne-Twister stream, two 32-bit draws per element, under a lock: about 100 ms of a
400-700 ms two-thread all-MiniLM-L6-v2 step, serial while the other cores wait (docs/performance.md).

Here one 64-bit draw gives four 16-bit uniforms (the draws are still serial, but there are 4x fewer and the
comparison is vectorised), each compared with a threshold: an element is dropped with
probability ``round(p * 65536) / 65536`` (0.100006 for p = 0.1) and kept ones are scaled by the inverse of the
exact keep probability, so the expectation is unchanged. The draws come from torch's global CPU generator, so
``torch.manual_seed``, ``torch.get_rng_state``/``set_rng_state`` (checkpoints, GradCache's replayed passes) and
reproducibility work as before; only the stream differs from ``torch.nn.Dropout``'s.

:func:`cpu_dropout` swaps it into a model for the duration of training: every ``torch.nn.Dropout`` module, and the
dropout on the attention probabilities through a registered Hugging Face attention function (the SDPA math path
computes them; a CPU SDPA with dropout falls back to it anyway). Nothing changes on GPU, where dropout is cheap,
nor in evaluation, nor in what is saved.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
from torch import Tensor, nn

ATTENTION = "decone_cpu_dropout"  # the attention implementation's registered name while training on CPU
_LEVELS = 65536  # 16-bit uniforms


def keep_mask(shape: tuple[int, ...] | torch.Size, p: float) -> tuple[Tensor, float]:
    """A CPU keep mask of ``shape`` (bool, True = keep) and the scale for kept elements.

    An element is dropped with probability ``round(p * 65536) / 65536``; the scale is 1 / (the exact keep probability).
    Draws ``ceil(numel / 4)`` 64-bit numbers from torch's global CPU generator.
    """
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1)  # (ceil(n/4),) uniform 64-bit
    uniform16 = words.view(torch.int16)[:n]  # (n,) uniform on [-32768, 32767]
    keep = uniform16 >= keep_threshold(p)
    return keep.view(shape), _LEVELS / (_LEVELS - round(p * _LEVELS))


def keep_threshold(p: float) -> int:
    """The int16 at and above which an element is kept: exactly ``round(p * 65536)`` of the 65,536 values lie below."""
    return round(p * _LEVELS) - _LEVELS // 2


class _MaskAndScale(torch.autograd.Function):
    """x * keep * scale, saving only the bool mask for the backward pass (as torch's native dropout does)."""

    @staticmethod
    def forward(ctx, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x.mul(keep).mul_(scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (keep,) = ctx.saved_tensors
        return grad.mul(keep).mul_(ctx.scale), None, None


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """``torch.nn.functional.dropout`` with :func:`keep_mask`'s random numbers on CPU; torch's own elsewhere."""
    return _dropout(x, p) if training else x


def _dropout(x: Tensor, p: float) -> Tensor:
    """Training-mode :func:`dropout` (a name that the attention function's ``dropout`` argument does not hide)."""
    if p == 0.0:
        return x
    if x.device.type != "cpu" or round(p * _LEVELS) >= _LEVELS:  # p within 2**-17 of 1 drops everything
        return nn.functional.dropout(x, p, True)
    keep, scale = keep_mask(x.shape, p)
    return _MaskAndScale.apply(x, keep, scale)


class Dropout(nn.Dropout):
    """``torch.nn.Dropout`` with :func:`dropout`'s CPU random numbers; same ``p``, same state (none)."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)


def attention(module: nn.Module, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
              dropout: float = 0.0, scaling: float | None = None, is_causal: bool | None = None, **kwargs):
    """Hugging Face attention function: SDPA, except on CPU with dropout, where it computes attention explicitly
    with :func:`dropout` on the probabilities.

    query (B, h, Lq, d), key and value (B, h, Lk, d), attention_mask None, bool (True = attend) or additive float,
    broadcastable to (B, h, Lq, Lk) -> ((B, Lq, h, d), None), as ``sdpa_attention_forward`` returns.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    is_causal = getattr(module, "is_causal", False) if is_causal is None else is_causal  # as SDPA's path decides
    plain = (dropout == 0.0 or query.device.type != "cpu" or is_causal or kwargs.get("position_bias") is not None
             or kwargs.get("cache") is not None or getattr(module, "num_key_value_groups", 1) > 1
             or key.shape[-2] != query.shape[-2])
    if plain:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling  # (B, h, Lq, Lk)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32)  # (B, h, Lq, Lk)
    probs = _dropout(probs, dropout)
    out = torch.matmul(probs.to(value.dtype), value)  # (B, h, Lq, d)
    return out.transpose(1, 2).contiguous(), None  # (B, Lq, h, d)


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(ATTENTION, attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)


@contextlib.contextmanager
def cpu_dropout(model: nn.Module) -> Iterator[int]:
    """Within the block, ``model`` (on CPU) uses :class:`Dropout` and :func:`attention`; yields how many dropout
    sites were switched. Restored on exit, so evaluation, saving and later GPU use see the original modules.
    A no-op for a model on another device."""
    device = next(model.parameters()).device
    if device.type != "cpu":
        yield 0
        return
    swapped: list[tuple[nn.Module, str, nn.Module]] = []  # (parent, attribute, the original module)
    attention_swaps: list[tuple[nn.Module, str]] = []  # (model, its implementation before)
    try:
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is nn.Dropout:
                    swapped.append((parent, name, child))
                    replacement = Dropout(child.p, inplace=False)
                    replacement.train(child.training)
                    setattr(parent, name, replacement)
        for sub in model.modules():
            config = getattr(sub, "config", None)
            # only from SDPA: our function hands evaluation back to SDPA, so evaluation stays bit-identical
            if hasattr(sub, "set_attn_implementation") and getattr(config, "_attn_implementation", None) == "sdpa":
                attention_swaps.append((sub, "sdpa"))
                try:
                    if not getattr(type(sub), "_can_set_attn_implementation", lambda: True)():
                        continue  # e.g. MPNet, DeBERTa-v2: their attention dropout is an nn.Dropout, swapped above
                    _register()
                    sub.set_attn_implementation(ATTENTION)
                except Exception:  # a model that does not take registered attention functions keeps its own
                    pass
        switched = sum(sub.config._attn_implementation == ATTENTION for sub, _ in attention_swaps)
        yield len(swapped) + switched
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)
        for sub, before in attention_swaps:
            if sub.config._attn_implementation == before:
                continue
            try:
                sub.set_attn_implementation(before)
            except Exception:  # e.g. at interpreter shutdown; the registered function still serves evaluation exactly
                sub.config._attn_implementation = before
