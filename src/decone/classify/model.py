"""A saved classifier (an encoder folder plus ``classifier.safetensors``/``classifier.json``) and labelled-text input.

:class:`Classifier` loads what ``decone train scl`` saves and predicts labels and probabilities. The encoder part of
the folder is an ordinary decone / sentence-transformers / ``AutoModel`` folder, so ``decone encode``, evaluation and
diagnostics accept it too.

Sentence pairs (MRPC, or a file with ``sentence1``/``sentence2`` columns) are classified as one text, the two
sentences joined by the tokenizer's separator token (``s1 [SEP] s2``), as a cross-encoder reads them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from decone.classify.scl import HEAD_FILE, HEAD_INFO
from decone.data import LabelledTexts, join_pair, read_labelled  # noqa: F401  (labelled input, read in decone.data)
from decone.errors import DataError, ModelError


class Classifier:
    """An encoder and a linear softmax head over its pooled features.

    Args:
        encoder: a :class:`decone.encoder.Encoder`.
        head: ``nn.Linear(encoder.dim, n_classes)``.
        labels: the class names, in the head's output order.
    """

    def __init__(self, encoder, head: nn.Linear, labels: Sequence[str], info: dict | None = None):
        if head.in_features != encoder.dim:
            raise ModelError(f"classifier head expects {head.in_features} features, the encoder gives {encoder.dim}")
        if head.out_features != len(labels):
            raise ModelError(f"classifier head has {head.out_features} outputs but {len(labels)} label names")
        self.encoder = encoder
        self.head = head.to(encoder.device).eval()
        self.labels = list(labels)
        self.info = info or {}

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None, allow_pickle: bool = False) -> "Classifier":
        """Load a folder written by ``decone train scl`` (or anything with ``classifier.json`` + safetensors head)."""
        from safetensors.torch import load_file

        from decone.encoder import Encoder

        folder = Path(path)
        if not folder.is_dir():
            raise ModelError(f"{folder}: model path does not exist" if not folder.exists() else f"{folder}: a model must be a folder")
        info_path, head_path = folder / HEAD_INFO, folder / HEAD_FILE
        if not info_path.exists() or not head_path.exists():
            raise ModelError(f"{folder}: not a classifier (no {HEAD_INFO} / {HEAD_FILE}); train one with `decone train scl`")
        try:
            info = json.loads(info_path.read_text())
            labels = [str(x) for x in info["labels"]]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise ModelError(f"{info_path}: not a valid classifier description ({exc})") from None
        try:
            state = load_file(head_path)
            weight, bias = state["weight"], state["bias"]
        except Exception as exc:  # a truncated or foreign file
            raise ModelError(f"{head_path}: cannot read the classifier weights ({str(exc).splitlines()[0][:200]})") from None
        encoder = Encoder.load(folder, device=device, allow_pickle=allow_pickle)
        head = nn.Linear(weight.shape[1], weight.shape[0])
        head.load_state_dict({"weight": weight, "bias": bias})
        return cls(encoder, head, labels, info)

    @property
    def separator(self) -> str:
        return getattr(self.encoder.tokenizer, "sep_token", None) or "[SEP]"

    # ------------------------------------------------------------------ inference
    def features(self, texts: Sequence[str], batch_size: int = 64, bf16: bool | None = None,
                 show_progress: bool | None = None) -> np.ndarray:
        """texts (N,) -> pooled features (N, d), float32: what the head and the contrastive term see."""
        return self.encoder.encode(list(texts), batch_size=batch_size, bf16=bf16, show_progress=show_progress)

    @torch.no_grad()
    def probabilities_from_features(self, features: np.ndarray) -> np.ndarray:
        """features (N, d) -> softmax probabilities (N, C), float32."""
        x = torch.as_tensor(np.asarray(features, dtype=np.float32), device=self.encoder.device)
        return torch.softmax(self.head(x).float(), dim=-1).cpu().numpy()

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64, bf16: bool | None = None) -> np.ndarray:
        """texts (N,) -> probabilities (N, C), columns in the order of :attr:`labels`."""
        return self.probabilities_from_features(self.features(texts, batch_size, bf16))

    def predict(self, texts: Sequence[str], batch_size: int = 64, bf16: bool | None = None) -> list[str]:
        """texts (N,) -> predicted label names (N,)."""
        probs = self.predict_proba(texts, batch_size, bf16)
        return [self.labels[i] for i in probs.argmax(axis=1)]

    def label_indices(self, labels: Sequence[str], source: str = "labels", lines: Sequence[int] | None = None) -> np.ndarray:
        """Gold label names -> indices; an unknown name raises a DataError naming file:line."""
        index = {name: i for i, name in enumerate(self.labels)}
        out = np.empty(len(labels), dtype=np.int64)
        for i, label in enumerate(labels):
            if label not in index:
                where = f"{source}:{lines[i]}" if lines is not None else f"{source}: example {i + 1}"
                raise DataError(f"{where}: label {label!r} is not one the model knows ({', '.join(self.labels)})")
            out[i] = index[label]
        return out
