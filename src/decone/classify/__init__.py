"""Classifier fine-tuning with a supervised contrastive term (Gunel, Du, Conneau and Stoyanov 2021, ICLR).

* :mod:`decone.classify.scl`: the loss ``(1 - lambda) CE + lambda SCL`` and the class-balanced batch sampler (the
  ``scl`` training method);
* :mod:`decone.classify.model`: :class:`Classifier` (a saved encoder + linear head) and input reading for ``predict``;
* :mod:`decone.classify.fewshot`: the few-shot / label-noise protocol (``decone fewshot``);
* :mod:`decone.classify.plots`: its figures;
* :mod:`decone.classify.command`: the CLI commands.
"""

_EXPORTS = {"Classifier": "model", "read_labelled": "model", "SCLClassifierLoss": "scl",
            "class_balanced_batches": "scl"}


def __getattr__(name):  # lazy (PEP 562): the CLI imports decone.classify.command at start-up
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"decone.classify.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'decone.classify' has no attribute {name!r}")

__all__ = ["Classifier", "SCLClassifierLoss", "class_balanced_batches", "read_labelled"]
