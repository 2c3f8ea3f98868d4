"""Classifier fine-tuning with a supervised contrastive term (Gunel, Du, Conneau and Stoyanov 2021, ICLR).

* :mod:`decone.classify.scl`: the loss ``(1 - lambda) CE + lambda SCL`` and the class-balanced batch sampler (the
  ``scl`` training method);
* :mod:`decone.classify.model`: :class:`Classifier` (a saved encoder + linear head) and input reading for ``predict``;
* :mod:`decone.classify.fewshot`: the few-shot / label-noise protocol (``decone fewshot``);
* :mod:`decone.classify.plots`: its figures;
* :mod:`decone.classify.command`: the CLI commands.
"""

from decone.classify.model import Classifier, read_labelled
from decone.classify.scl import SCLClassifierLoss, class_balanced_batches

__all__ = ["Classifier", "SCLClassifierLoss", "class_balanced_batches", "read_labelled"]
