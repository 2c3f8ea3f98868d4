"""decone: contrastive learning that turns BERT-like encoders into isotropic sentence and word encoders.

Public API::

    from decone import Encoder, TrainConfig, fit
    enc = Encoder.load("path/or/hub-name", pooling="mean")
    emb = enc.encode(["a sentence", "another"], normalize=True)   # (2, d) float32 numpy
"""

import os as _os
import sys as _sys


def _is_train_command(argv: list[str]) -> bool:
    """This process is ``decone train ...``: the console script, or ``python -m decone train`` (as torchrun starts
    it), whose ``argv[0]`` is ``-m`` while the package is imported."""
    return len(argv) > 1 and argv[1] == "train" and (argv[0] == "-m" or _os.path.basename(argv[0]) in ("decone", "decone.exe"))


# torch's idle OpenMP threads spin by default, which starves the working thread when other jobs share the cores
# (docs/evaluation.md measures encoding on a busy machine both ways), so decone makes them sleep. Training is the
# exception: its few thousand short parallel operations a step each pay to wake a sleeping thread (docs/performance.md,
# "Threads"), and `fit` gives cores back while other processes need them (decone.threads). Must be decided before torch loads; OMP_WAIT_POLICY set by the user always wins.
if not _is_train_command(_sys.argv):
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from decone.errors import DeconeError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Encoder", "pool", "POOLINGS", "DeconeError", "TrainConfig", "fit", "__version__"]


def __getattr__(name):  # lazy: `decone --help` and usage errors must not wait for torch to import
    import importlib

    if name in ("TrainConfig", "fit"):
        return getattr(importlib.import_module("decone.train"), name)
    if name in ("Encoder", "pool", "POOLINGS"):
        return getattr(importlib.import_module("decone.encoder"), name)
    raise AttributeError(name)
