"""The objective protocol: what a method optimises, given the model and a batch of views.

An :class:`Objective` is an ``nn.Module``. Its submodules and buffers belong to the run: trainable parameters go into
the optimizer, everything (queues, momentum copies, second towers, decoders) goes into the checkpoint, and nothing of
it goes into the saved model folder unless :meth:`Objective.save` writes it. The trainer calls, per run and step:

    setup(model, data)          once, after the encoder is loaded (build modules that need its size or the data)
    labels(data)                once: (N,) long class indices, or None
    prepare(model, views, bf16) every step, before the loss: no-grad work (a momentum encoder's embeddings)
    loss(model, views, labels, bf16) -> scalar; the trainer calls backward on it
    after_step(model)           after the optimizer step: EMA updates, queue rolls; may return metrics to log
    encoder_to_save(model)      which encoder the model folder holds (the trained one; CT may choose its other tower)
    save(folder)                when the model folder is written (e.g. a classifier head)

``model`` is the :class:`decone.train.Trainable`: ``model.encoder`` (the saved encoder), ``model.head`` (a
training-only head or None), ``model.embed(texts, bf16) -> (N, d)``, ``model.loss_from_views(views, labels)`` (which
gathers the views over processes under DDP and then calls :meth:`loss_from_embeddings`).

The common case overrides only :meth:`loss_from_embeddings`: the default :meth:`loss` runs ONE forward over the K x B
texts and hands the K (B, d) views to it. Such an objective works unchanged under GradCache (which calls
``loss_from_views`` on cached embeddings) and under several processes. An objective that overrides :meth:`loss`
(it calls the encoder itself, or a second model) sets ``gradcache_refusal`` to the reason GradCache cannot split
it, unless it has made sure it can; likewise ``distributed_refusal``, and ``lora_refusal`` where a copy of the encoder
made in :meth:`Objective.setup` (before LoRA is attached) cannot follow LoRA's weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from torch import Tensor, nn

if TYPE_CHECKING:  # type hints only: decone.train imports this module
    from decone.data import Dataset
    from decone.train import Trainable


class Objective(nn.Module):
    """Base class of every training objective (see the module docstring for the protocol)."""

    #: ``loss_from_embeddings(views, labels, offset)`` takes local anchors against candidates gathered from all
    #: processes (rows ``offset .. offset + n`` are the anchors' own). Others get the whole gathered batch.
    supports_offset: bool = False
    #: None where GradCache may split the batch; else the one-line reason it cannot.
    gradcache_refusal: str | None = None
    #: None where several processes may share the batch; else the one-line reason they cannot.
    distributed_refusal: str | None = None
    #: None where ``--lora-r`` may train adapters instead of the encoder's weights; else the one-line reason it cannot.
    lora_refusal: str | None = None

    def setup(self, model: "Trainable", data: "Dataset") -> None:
        """Build what needs the encoder or the data (called once, before the optimizer is made)."""

    def ready(self, model: "Trainable", data: "Dataset") -> None:
        """Once the model is complete and on its device (attention switched, LoRA attached), before the optimizer is
        made; not when a run resumes from a checkpoint. For initialisation that needs the model's real forward."""

    def labels(self, data: "Dataset") -> Tensor | None:
        """(N,) long class indices of the examples, or None for objectives without labels."""
        return None

    def prepare(self, model: "Trainable", views: list[list[str]], use_bf16: bool) -> None:
        """No-grad work before the loss of a step (this process's shard of the batch)."""

    def loss(self, model: "Trainable", views: list[list[str]], labels: Tensor | None, use_bf16: bool) -> Tensor:
        """K views of B texts -> ONE forward over K*B texts -> :meth:`loss_from_embeddings` on K (B, d) views."""
        k, b = len(views), len(views[0])
        z = model.embed([t for view in views for t in view], use_bf16)  # (K*B, d)
        return model.loss_from_views(list(z.view(k, b, -1).unbind(0)), labels)

    def loss_from_embeddings(self, views: list[Tensor], labels: Tensor | None = None, offset: int = 0) -> Tensor:
        """K views, each (B, d) in fp32 -> scalar."""
        raise NotImplementedError(f"{type(self).__name__} defines neither loss_from_embeddings nor loss")

    def forward(self, views: list[Tensor], labels: Tensor | None = None, offset: int = 0) -> Tensor:
        return self.loss_from_embeddings(views, labels, offset)

    def after_step(self, model: "Trainable") -> dict | None:
        """After each optimizer step (EMA updates, queue rolls); may return numbers for the log row."""
        return None

    def encoder_to_save(self, model: "Trainable"):
        """The encoder written to the model folder: the trained one, unless the objective trains another (CT)."""
        return model.encoder

    def save(self, folder: Path) -> None:
        """Write what the saved model keeps of this objective beside the encoder (most keep nothing)."""
