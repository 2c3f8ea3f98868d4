"""decone: contrastive learning that turns BERT-like encoders into isotropic sentence and word encoders.

Public API::

    from decone import Encoder, TrainConfig, fit
    enc = Encoder.load("path/or/hub-name", pooling="mean")
    emb = enc.encode(["a sentence", "another"], normalize=True)   # (2, d) float32 numpy
"""

import os as _os

# torch's idle OpenMP threads spin by default, which starves the working thread when other jobs share the cores
# (measured: 27 s vs 5.5 s to encode 1,024 sentences on a busy 2-core machine). Must be set before torch loads.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from decone.encoder import POOLINGS, Encoder, pool  # noqa: E402
from decone.errors import DeconeError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Encoder", "pool", "POOLINGS", "DeconeError", "TrainConfig", "fit", "__version__"]


def __getattr__(name):  # lazy: importing the trainer pulls in more than encoding needs
    if name in ("TrainConfig", "fit"):
        import importlib

        return getattr(importlib.import_module("decone.train"), name)
    raise AttributeError(name)
