"""GradCache: contrastive batches larger than memory (Gao, Zhang, Han and Callan 2021, "Scaling Deep Contrastive
Learning Batch Size under Memory Limited Setup", RepL4NLP).

An in-batch contrastive loss couples every example with every other, so the batch cannot simply be split into
gradient-accumulation steps. GradCache splits the ENCODER instead:

1. embed the whole batch in mini-batches WITHOUT the autograd graph (memory of one mini-batch), keeping the embeddings;
2. compute the loss on all embeddings and its gradient with respect to the embeddings (cheap: (N, d));
3. re-run each mini-batch WITH the graph and backpropagate its slice of the cached embedding gradient.

The parameter gradient is then exactly that of the full batch (the chain rule, split by rows), for one extra forward
pass. Two details make it exact:

* the second forward of a mini-batch must see the same dropout masks as the first (with SimCSE, dropout IS the
  augmentation): the RNG state (CPU and the current CUDA device) is recorded before each mini-batch's first pass and
  restored for its second; the global RNG ends where the first pass left it;
* the K views x B texts of a batch are flattened view-major (all of view 1, then all of view 2, ...) exactly as
  :meth:`decone.train.Trainable.compute_loss` does, cut into consecutive mini-batches of ``mini_batch_size * K``
  texts (``--mini-batch-size`` counts examples, as ``--batch-size`` does), and the embeddings put back in that order
  before the loss.

Memory: the graph of one mini-batch plus (K*B, d) embeddings and their gradient, so a batch of 1024 costs about what a
batch of ``mini_batch_size`` does (see ``benchmarks/gradcache_memory.py``). Time: one extra forward pass without the
graph (about +1/3 of a step).

With several processes (:mod:`decone.distributed`) the caching is local and the loss global: each rank embeds its
shard in mini-batches, the loss all-gathers the embeddings (with gradient), and each rank backpropagates its own
rows' gradient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from decone.train import Trainable


class RandContext:
    """The torch RNG state (CPU and, where used, the current CUDA device) at construction.

    ``with ctx:`` runs the block from that state and afterwards restores whatever state the RNG had before the block.
    """

    def __init__(self, device: torch.device):
        self.cuda_device = device if device.type == "cuda" else None
        self.cpu_state = torch.get_rng_state()
        self.cuda_state = torch.cuda.get_rng_state(self.cuda_device) if self.cuda_device is not None else None
        self._fork = None

    def __enter__(self) -> "RandContext":
        devices = [self.cuda_device] if self.cuda_device is not None else []
        self._fork = torch.random.fork_rng(devices=devices, enabled=True)
        self._fork.__enter__()
        torch.set_rng_state(self.cpu_state)
        if self.cuda_device is not None:
            torch.cuda.set_rng_state(self.cuda_state, self.cuda_device)
        return self

    def __exit__(self, *exc) -> None:
        fork, self._fork = self._fork, None
        fork.__exit__(*exc)


def chunk_ranges(n: int, size: int) -> list[tuple[int, int]]:
    """Consecutive [start, end) ranges of at most ``size`` covering 0..n."""
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def cached_loss_and_backward(
    model: "Trainable",
    views: list[list[str]],
    labels: Tensor | None,
    use_bf16: bool,
    mini_batch_size: int,
) -> Tensor:
    """GradCache one batch: accumulate into ``.grad`` the full-batch gradient, computed in mini-batches.

    Args:
        model: the :class:`~decone.train.Trainable` (encoder, training head, loss; ``model.dist`` if distributed).
        views: K views of B texts each.
        labels: the batch's labels or None.
        use_bf16: bf16 autocast for the encoder (the loss runs in fp32 either way).
        mini_batch_size: examples per forward pass, like ``--batch-size``: each pass embeds ``mini_batch_size * K``
            consecutive texts of the flattened K*B (so ``--mini-batch-size 64`` needs the memory of an uncached batch
            of 64).

    Returns:
        The loss of the whole batch, detached (the backward pass is already done).
    """
    if mini_batch_size < 1:
        raise ValueError(f"mini_batch_size must be >= 1, got {mini_batch_size}")
    k, b = len(views), len(views[0])
    texts = [t for view in views for t in view]  # view-major, as in Trainable.compute_loss
    ids = model.tokenize_ids(texts)  # once for both passes
    ranges = chunk_ranges(len(texts), mini_batch_size * k)
    device = model.encoder.device

    # 1. all embeddings without the graph, recording the RNG state before each mini-batch
    states: list[RandContext] = []
    parts: list[Tensor] = []
    with torch.no_grad():
        for start, end in ranges:
            states.append(RandContext(device))
            parts.append(model.embed_ids(ids[start:end], use_bf16))
    cache = torch.cat(parts).detach().requires_grad_()  # (K*B, d)

    # 2. the loss and its gradient w.r.t. the embeddings (and w.r.t. the loss's own parameters, if any)
    loss = model.loss_from_views(list(cache.view(k, b, -1).unbind(0)), labels)
    loss.backward()
    grad = cache.grad

    # 3. each mini-batch again, with the graph and its first pass's dropout masks, backpropagating its cached gradient
    for (start, end), state in zip(ranges, states):
        with state:
            z = model.embed_ids(ids[start:end], use_bf16)
        z.backward(grad[start:end])
    return loss.detach()
