"""The word-embedding gradient on CPU: one kept buffer, filled row by row, instead of a fresh dense matrix a step.

A BERT-like encoder's largest parameter is its word-embedding matrix (30,522 x 384 for all-MiniLM-L6-v2: 11.7M of its
22.7M parameters, 47 MB in fp32), yet a batch touches only a few hundred of its rows. torch's dense embedding backward
allocates a fresh zero matrix of that size on every backward pass and adds the batch's rows into it. On CPU, glibc
serves an allocation that large with a fresh ``mmap``, so every step zero-fills 47 MB of new pages (thousands of page
faults, which do not get faster with more threads): the lookup's backward alone takes ~20 ms on this machine's two
threads, ~3 ms with the kept buffer below (docs/performance.md; a whole step gains ~2%).

:class:`KeptEmbeddingGrad` keeps ``weight.grad`` allocated for the whole run and makes the lookup's backward sparse
(``nn.Embedding.sparse``): each backward pass adds only the looked-up rows (a sparse COO gradient) into the kept dense
buffer, which autograd does in place, and :meth:`KeptEmbeddingGrad.zero_grad` zeroes it in place (~1 ms, no new
pages). Everything downstream sees the dense gradient it saw before: gradient clipping, the fused AdamW update of every
row, the all-reduce of distributed training, GradCache's several backward passes. Rows that appear several times in a
batch are summed in another order than torch's dense kernel sums them, so gradients agree to rounding, not bitwise.
Nothing is saved differently: the ``sparse`` flag is restored when the block ends.
"""

from __future__ import annotations

import torch
from torch import nn


def input_embedding(model: nn.Module) -> nn.Embedding | None:
    """The trainable word-embedding module of a Hugging Face model, or None: no such module, a subclass (which may
    change the lookup), frozen, already sparse, or ``scale_grad_by_freq`` (torch has no sparse gradient for it)."""
    getter = getattr(model, "get_input_embeddings", None)
    try:
        embedding = getter() if getter is not None else None
    except NotImplementedError:
        return None
    if (type(embedding) is not nn.Embedding or embedding.sparse or embedding.scale_grad_by_freq
            or not embedding.weight.requires_grad):
        return None
    return embedding


class KeptEmbeddingGrad:
    """Within ``with``: ``embedding.weight.grad`` is a kept dense buffer that backward passes fill sparsely.

    ``embedding`` None makes every method a no-op (other devices, models without a plain input embedding), so the
    training loop calls it unconditionally. Use :meth:`zero_grad` instead of ``optimizer.zero_grad``.
    """

    def __init__(self, embedding: nn.Embedding | None):
        self.embedding = embedding
        self._buffer: torch.Tensor | None = None

    @classmethod
    def for_model(cls, model: nn.Module, device: torch.device) -> "KeptEmbeddingGrad":
        """On CPU, for ``model``'s input embedding; a no-op elsewhere (a GPU allocator reuses its memory anyway)."""
        return cls(input_embedding(model) if device.type == "cpu" else None)

    @property
    def active(self) -> bool:
        return self.embedding is not None

    def __enter__(self) -> "KeptEmbeddingGrad":
        if self.embedding is not None:
            weight = self.embedding.weight
            if weight.grad is None:
                weight.grad = torch.zeros_like(weight)
            elif weight.grad.layout != torch.strided:  # a sparse gradient left by the caller: keep its values, dense
                weight.grad = weight.grad.to_dense()
            self._buffer = weight.grad  # a dense gradient already there is kept and added to, as autograd would
            self.embedding.sparse = True
        return self

    def zero_grad(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.zero_grad(set_to_none=True)``, except that the embedding's buffer is zeroed and kept."""
        optimizer.zero_grad(set_to_none=True)
        if self.embedding is not None:
            self.embedding.weight.grad = self._buffer.zero_()

    def __exit__(self, *exc) -> None:
        if self.embedding is not None:
            self.embedding.sparse = False
            self.embedding.weight.grad = None
            self._buffer = None
