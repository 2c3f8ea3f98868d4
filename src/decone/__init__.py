"""decone: contrastive learning that turns BERT-like encoders into isotropic sentence and word encoders.

Public API::

    from decone import Encoder, TrainConfig, fit
    enc = Encoder.load("path/or/hub-name", pooling="mean")
    emb = enc.encode(["a sentence", "another"], normalize=True)   # (2, d) float32 numpy
"""

from decone.encoder import POOLINGS, Encoder, pool
from decone.errors import DeconeError

__version__ = "0.1.0"

__all__ = ["Encoder", "pool", "POOLINGS", "DeconeError", "TrainConfig", "fit", "__version__"]


def __getattr__(name):  # lazy: importing the trainer pulls in more than encoding needs
    if name in ("TrainConfig", "fit"):
        import importlib

        return getattr(importlib.import_module("decone.train"), name)
    raise AttributeError(name)
