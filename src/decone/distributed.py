"""Data-parallel training across processes (``torchrun``), with global in-batch negatives.

Launch (one process per GPU, or several CPU processes)::

    torchrun --nproc_per_node 4 -m decone train simcse --model ... --data ...            # one machine
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --master_port 29500 \\
             --nproc_per_node 8 -m decone train simcse ...                              # first of two machines

``torchrun`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_from_env`
reads them and joins the process group (``nccl`` on GPUs, ``gloo`` on CPUs). Without them (or with ``WORLD_SIZE=1``)
nothing changes: a plain single-process run.

Semantics, chosen so that N processes train exactly the model 1 process would train on the same data:

* ``--batch-size`` is the GLOBAL batch (the number of in-batch negatives). Every rank builds the same global batch
  (same seed, same order, same augmented views), then keeps a disjoint strided slice of it: rank r takes rows
  r, r + N, r + 2N, ... (strided rather than contiguous, so that every rank gets a similar mix of lengths from the
  length-grouped batch, and the same amount of padding).
* Embeddings are all-gathered WITH gradient flow (:func:`gather_with_grad`), so every rank contrasts its anchors
  against the candidates of every rank (global negatives). For losses with an ``offset`` (InfoNCE) the local anchors
  are rows ``offset .. offset + n`` of the gathered candidates; other losses (symmetric InfoNCE, SupCon, the SCL
  classifier) are computed on the whole gathered batch, with gathered labels, on every rank.
* Gradients are averaged over ranks after the backward pass (:meth:`DistContext.all_reduce_grads`), once per
  optimizer step, also with GradCache's several backward passes. The local losses are scaled so that the averaged
  gradient is the gradient of the global-batch loss.
* Rank 0 alone writes checkpoints, logs and the final model; the others wait at a barrier.

This is DDP's arithmetic (identical initial weights, disjoint shards, averaged gradients) without the
``DistributedDataParallel`` wrapper: the wrapper's per-backward bucketed all-reduce does not fit GradCache (several
backward passes per step) or losses that own parameters outside the forward pass, and for sentence encoders the
single flattened all-reduce per step is a small fraction of a step.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn


@dataclass
class DistContext:
    """This process's place in the process group."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str
    owns_group: bool = False  # this context created the process group (and destroys it after training)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ data
    def shard_positions(self, n: int) -> list[int]:
        """Positions of this rank's rows in a global batch of ``n``: r, r + N, r + 2N, ... (disjoint, covering)."""
        return list(range(self.rank, n, self.world_size))

    def shard_views(self, views: list[list[str]]) -> list[list[str]]:
        """Each view (a list of B texts) cut down to this rank's rows."""
        pos = self.shard_positions(len(views[0]))
        return [[view[i] for i in pos] for view in views]

    def shard_labels(self, labels: Tensor | None) -> Tensor | None:
        if labels is None:
            return None
        return labels[torch.as_tensor(self.shard_positions(labels.shape[0]), device=labels.device)]

    # ------------------------------------------------------------------ collectives
    def barrier(self) -> None:
        import torch.distributed as dist

        if self.backend == "nccl":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def sizes(self, n: int) -> list[int]:
        """Every rank's local row count (one small all-gather)."""
        import torch.distributed as dist

        mine = torch.tensor([n], dtype=torch.long, device=self.device)
        out = [torch.zeros_like(mine) for _ in range(self.world_size)]
        dist.all_gather(out, mine)
        return [int(x.item()) for x in out]

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank (e.g. Ctrl-C seen by one process)."""
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def mean_scalar(self, value: Tensor) -> Tensor:
        """The mean of a detached scalar over ranks (for logging)."""
        import torch.distributed as dist

        t = value.detach().float().reshape(1).clone()
        dist.all_reduce(t)
        return (t / self.world_size).reshape(())

    def broadcast_parameters(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (they should already agree; this makes it certain)."""
        import torch.distributed as dist

        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)

    def all_reduce_grads(self, module: nn.Module, bucket_mb: float = 64.0) -> None:
        """Average the gradients over ranks, in flattened buckets (one all-reduce per ~``bucket_mb`` MB).

        A parameter with no gradient on any rank keeps ``grad = None`` (the optimizer then skips it, as in a
        single process); one with a gradient on some ranks only gets zeros filled in on the others.
        """
        import torch.distributed as dist

        params = [p for p in module.parameters() if p.requires_grad]
        has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=self.device)
        dist.all_reduce(has, op=dist.ReduceOp.MAX)
        live = []
        for p, h in zip(params, has.tolist()):
            if h > 0:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                live.append(p)
        limit = int(bucket_mb * 2**20)
        bucket: list[Tensor] = []
        size = 0
        for p in live:
            bucket.append(p.grad)
            size += p.grad.numel() * p.grad.element_size()
            if size >= limit:
                self._reduce_bucket(bucket)
                bucket, size = [], 0
        if bucket:
            self._reduce_bucket(bucket)

    def _reduce_bucket(self, grads: list[Tensor]) -> None:
        import torch.distributed as dist

        by_dtype: dict[torch.dtype, list[Tensor]] = {}
        for g in grads:
            by_dtype.setdefault(g.dtype, []).append(g)
        for group in by_dtype.values():
            flat = torch.cat([g.reshape(-1) for g in group])
            dist.all_reduce(flat)
            flat /= self.world_size
            offset = 0
            for g in group:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()

    # ------------------------------------------------------------------ the loss with global negatives
    def loss(self, objective, views: list[Tensor], labels: Tensor | None) -> Tensor:
        """The contrastive loss of this rank's views against the gathered views of all ranks.

        Args:
            objective: the method's :class:`~decone.objectives.Objective`; its ``loss_from_embeddings(views, labels, offset)``.
            views: this rank's K views, each (n_local, d), with gradient.
            labels: this rank's labels (n_local,) or None.

        Returns:
            A scalar whose gradient, averaged over ranks by :meth:`all_reduce_grads`, is the gradient of the loss of
            the whole global batch computed in one process. (Its value is this rank's share; see
            :meth:`mean_scalar` for the global-batch loss.)
        """
        n_local = views[0].shape[0]
        sizes = self.sizes(n_local)
        total = sum(sizes)
        offset = sum(sizes[: self.rank])
        gathered = [gather_with_grad(v, sizes, self.rank) for v in views]  # each (total, d)
        if objective.supports_offset:
            # local anchors against global candidates: the mean over local anchors, reweighted so that the average
            # over ranks is the mean over all anchors of the global batch
            if n_local == 0:
                return sum(g.sum() for g in gathered) * 0.0
            local = objective.loss_from_embeddings([views[0], *gathered[1:]], labels, offset=offset)
            return local * (n_local * self.world_size / total)
        # any other loss: the whole global-batch loss on every rank (cheap next to the encoder); the gradient reaching
        # each rank's embeddings through the gather is then world_size x the single-process one, which the average
        # in all_reduce_grads divides back out, while the loss's own parameters get the single-process gradient
        all_labels = gather_labels(labels, sizes, self.rank, self.device) if labels is not None else None
        return objective.loss_from_embeddings(gathered, all_labels)


class _GatherWithGrad(torch.autograd.Function):
    """All-gather rows of every rank (sizes may differ); backward sums the gradients of all ranks and keeps the local
    rows (a reduce-scatter, done as an all-reduce, which every backend has)."""

    @staticmethod
    def forward(ctx, x: Tensor, sizes: Sequence[int], rank: int) -> Tensor:  # type: ignore[override]
        import torch.distributed as dist

        ctx.sizes, ctx.rank = list(sizes), rank
        width = max(sizes)
        padded = x.new_zeros((width, *x.shape[1:]))
        padded[: x.shape[0]] = x
        out = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(out, padded.contiguous())
        return torch.cat([o[:n] for o, n in zip(out, sizes)], dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None, None


def gather_with_grad(x: Tensor, sizes: Sequence[int], rank: int) -> Tensor:
    """(n_rank, ...) on each rank -> (sum(sizes), ...) in rank order, differentiable w.r.t. the local rows."""
    return _GatherWithGrad.apply(x, sizes, rank)


def gather_labels(labels: Tensor, sizes: Sequence[int], rank: int, device: torch.device) -> Tensor:
    with torch.no_grad():
        return _GatherWithGrad.apply(labels.to(device), sizes, rank)


# ---------------------------------------------------------------------------------------------------------- set-up
def world_size_from_env() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_env(timeout_s: float = 1800.0) -> DistContext | None:
    """Join the process group that ``torchrun`` describes in the environment; None for a single process.

    Uses ``nccl`` with one GPU per process (``LOCAL_RANK``) where CUDA is available, else ``gloo`` on CPU.
    Calling it again returns the existing group's context.
    """
    import torch.distributed as dist

    if world_size_from_env() <= 1 and not dist.is_initialized():
        return None
    if not dist.is_available():
        from decone.errors import ConfigError

        raise ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and os.environ.get("DECONE_DIST_BACKEND", "") != "gloo"
    if use_cuda:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    owns = not dist.is_initialized()
    if owns:
        backend = "nccl" if use_cuda else "gloo"
        kwargs = {"device_id": device} if use_cuda else {}
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    ctx = DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device, str(dist.get_backend()), owns)
    if ctx.world_size <= 1:
        return None
    return ctx


def destroy(synchronise: bool = True, ctx: DistContext | None = None) -> None:
    """Leave the process group. After a run that ended well, a barrier first (``ctx``'s, which names the GPU under
    NCCL), so that no rank tears down its connections (and rank 0 the store) while another still uses them: an
    unsynchronised gloo teardown can abort a process at exit. After an error, no barrier: the other ranks may never
    reach it, and the launcher should see this rank fail rather than wait for it."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if synchronise and ctx is not None:
            ctx.barrier()
        elif synchronise:
            dist.barrier()
        dist.destroy_process_group()


class NoProgress:
    """The progress bar of ranks other than 0: nothing."""

    speed = 0.0

    def update(self, step: int, loss: float) -> None:
        pass

    def close(self) -> None:
        pass
