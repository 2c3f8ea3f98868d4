"""Supervised contrastive fine-tuning of a classifier (Gunel, Du, Conneau and Stoyanov 2021, ICLR).

The loss of one batch of B examples with pooled encoder features z (B, d) and gold classes y (B,) is

    L = (1 - lambda) * CE(W z + b, y) + lambda * SCL(z, y)

where CE is the softmax cross-entropy of a linear head on the features and SCL is the supervised contrastive loss
(Khosla et al. 2020, L_out; :class:`decone.objectives.contrastive.SupCon`) over the L2-normalised features of the batch at
temperature tau: each example is pulled towards the other examples of its class and pushed from the rest.
``lambda = 0`` is plain cross-entropy fine-tuning; the paper's default is ``lambda = 0.9``, ``tau = 0.3``.

It is an :class:`~decone.objectives.Objective`: ``setup`` builds the label vocabulary and the linear head (a
submodule, so it is optimised and checkpointed with the encoder), either at random (``head_init="random"``, the
paper's) or from a logistic regression on the frozen features of the training data (``"probe"``: linear probing
then fine-tuning, Kumar et al. 2022, arXiv:2202.10054; the ``scl`` method's default, since with a few dozen examples
and a fine-tuning learning rate a random head barely moves from its start); ``labels`` gives each example's class index; ``save``
writes ``classifier.safetensors`` (``weight`` (C, d), ``bias`` (C,)) and ``classifier.json`` (label names and settings)
beside the saved encoder.

:func:`class_balanced_batches` is the method's batch sampler: every class present in a batch appears at least twice,
so every anchor has a positive (SupCon's term is undefined for an anchor without one).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from decone.errors import ConfigError, DataError
from decone.objectives import Objective, check_temperature, supcon

#: The paper's defaults (Gunel et al. 2021, section 4): lambda 0.9, temperature 0.3.
DEFAULT_LAMBDA = 0.9
DEFAULT_TEMPERATURE = 0.3
HEAD_FILE = "classifier.safetensors"
HEAD_INFO = "classifier.json"
HEAD_INITS = ("probe", "random")
PROBE_EXAMPLES = 10_000  #: at most this many training examples (a seeded sample) fit the probe

def check_head_init(value: str, flag: str = "head_init") -> str:
    if value not in HEAD_INITS:
        raise ConfigError(f"{flag} must be one of {', '.join(HEAD_INITS)}, got {value!r}")
    return value


def check_lambda(value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"scl_lambda must be in [0, 1] (0 = cross-entropy only), got {value}")
    return value


def label_vocabulary(labels: Sequence[str]) -> list[str]:
    """Sorted distinct labels; numerically when every label is an integer (so "2" comes before "10")."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=lambda s: (int(s), s))
    except ValueError:
        return sorted(distinct)


class SCLClassifierLoss(Objective):
    """(1 - lambda) * cross-entropy of a linear head + lambda * SupCon over the pooled features.

    Args:
        scl_lambda: the weight of the contrastive term, in [0, 1]; 0 is pure cross-entropy.
        temperature: SupCon's temperature tau (> 0).
        labels: a fixed label vocabulary; otherwise ``setup`` takes the data's ``label_names``, else its labels sorted.
    """

    gradcache_refusal = "GradCache (--mini-batch-size) is for contrastive methods, not classifier fine-tuning"

    def __init__(self, scl_lambda: float = DEFAULT_LAMBDA, temperature: float = DEFAULT_TEMPERATURE,
                 labels: Sequence[str] | None = None, head_init: str = "random"):
        super().__init__()
        self.head_init = check_head_init(head_init)
        self.scl_lambda = check_lambda(scl_lambda)
        self.temperature = check_temperature(temperature)
        self.label_names: list[str] | None = list(labels) if labels is not None else None
        self.classifier: nn.Linear | None = None
        self.pooling: str | None = None
        self.last: dict[str, float] = {}  # the last batch's CE and SCL terms, for logging

    def setup(self, model, data) -> None:
        """Build the label vocabulary and the linear head ``Linear(encoder.dim, n_classes)``."""
        if data.labels is None:
            raise DataError(f"{data.source}: scl needs labelled data (a text and a label column)")
        if self.label_names is None:
            self.label_names = list(data.label_names or label_vocabulary(data.labels))
        if len(self.label_names) < 2:
            only = self.label_names[0] if self.label_names else "none"
            raise DataError(f"{data.source}: only one class ({only!r}); a classifier needs at least 2 classes "
                            "(and supervised contrastive learning needs negatives)")
        self.labels(data)  # every label must be in the vocabulary
        self.classifier = nn.Linear(model.encoder.dim, len(self.label_names))
        self.pooling = model.encoder.pooling

    def ready(self, model, data) -> None:
        """With ``head_init="probe"``: the head from :meth:`fit_probe`, once the model is complete and on its device."""
        if self.head_init == "probe":
            self.fit_probe(model, data)

    @torch.no_grad()
    def fit_probe(self, model, data) -> None:
        """Set the head to a logistic regression (scikit-learn, L2, C = 1) on the frozen features of the training
        examples: the features the loss sees, in eval mode (no dropout). Classes absent from the data get zero
        weights and a bias below every other class's."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        y = self.labels(data).numpy()
        rows = np.arange(len(y))
        if len(rows) > PROBE_EXAMPLES:
            rows = np.sort(np.random.default_rng(0).choice(len(rows), PROBE_EXAMPLES, replace=False))
        if len(np.unique(y[rows])) < 2:  # one class only: nothing to fit, keep the random head
            return
        was_training = model.training
        model.eval()
        try:
            texts = [str(data.examples[i][0]) for i in rows]
            x = torch.cat([model.embed(texts[i:i + 64], False) for i in range(0, len(texts), 64)]).cpu().numpy()
        finally:
            model.train(was_training)
        with warnings.catch_warnings():  # an unconverged probe is still a better start than a random head
            warnings.simplefilter("ignore", ConvergenceWarning)
            probe = LogisticRegression(max_iter=1000).fit(x, y[rows])
        coef, bias = probe.coef_, probe.intercept_
        if len(probe.classes_) == 2 and coef.shape[0] == 1:  # binary: one logit difference, split as a softmax pair
            coef, bias = np.vstack([-coef / 2, coef / 2]), np.concatenate([-bias / 2, bias / 2])
        weight = np.zeros((len(self.label_names), x.shape[1]), dtype=np.float32)
        full_bias = np.full(len(self.label_names), float(bias.min()) - 10.0, dtype=np.float32)
        weight[probe.classes_], full_bias[probe.classes_] = coef, bias
        self.classifier.weight.copy_(torch.from_numpy(weight))
        self.classifier.bias.copy_(torch.from_numpy(full_bias))

    def labels(self, data) -> torch.Tensor:
        """The class index of each example, (N,) long."""
        index = {name: i for i, name in enumerate(self.label_names or [])}
        out = []
        for i, label in enumerate(data.labels):
            if label not in index:
                raise DataError(f"{data.source}: example {i + 1} has label {label!r}, not one of {', '.join(index)}")
            out.append(index[label])
        return torch.as_tensor(out, dtype=torch.long)

    def loss_from_embeddings(self, views: list[Tensor], labels: Tensor | None = None, offset: int = 0) -> Tensor:
        """views: [z] with z (B, d) the pooled features in fp32; labels (B,) class indices -> scalar."""
        if self.classifier is None:
            raise RuntimeError("SCLClassifierLoss.setup(model, data) must run before the loss")
        z = views[0]
        ce = F.cross_entropy(self.classifier(z), labels)
        if self.scl_lambda == 0.0:  # exactly cross-entropy; no contrastive graph
            self.last = {"ce": float(ce.detach()), "scl": float("nan")}
            return ce
        scl = supcon(z, labels, self.temperature)  # SupCon L2-normalises z itself
        self.last = {"ce": float(ce.detach()), "scl": float(scl.detach())}
        if self.scl_lambda == 1.0:
            return scl + 0.0 * ce  # the head gets no signal, but stays in the graph
        return (1.0 - self.scl_lambda) * ce + self.scl_lambda * scl

    def save(self, folder: str | os.PathLike) -> None:
        """Write ``classifier.safetensors`` and ``classifier.json`` into the saved encoder's folder (atomically)."""
        save_head(folder, self.classifier, self.label_names or [], {
            "method": "scl", "scl_lambda": self.scl_lambda, "temperature": self.temperature, "pooling": self.pooling,
        })


def save_head(folder: str | os.PathLike, head: nn.Linear, labels: Sequence[str], extra: dict | None = None) -> None:
    """A linear head as ``classifier.safetensors`` + ``classifier.json`` (label names first to last)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {"weight": head.weight.detach().float().cpu().contiguous(), "bias": head.bias.detach().float().cpu().contiguous()}
    info = {"labels": list(labels), "num_labels": len(labels), "in_features": head.in_features, **(extra or {})}
    tmp_w, tmp_j = folder / f".{HEAD_FILE}.tmp", folder / f".{HEAD_INFO}.tmp"
    save_file(weights, tmp_w)
    tmp_j.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp_w, folder / HEAD_FILE)
    os.replace(tmp_j, folder / HEAD_INFO)


# ---------------------------------------------------------------------------------------------------------- sampler
def class_balanced_batches(labels: Sequence, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """One epoch of batches where every class present in a batch appears at least twice.

    The examples of each class are shuffled and cut into ``k = min(n_batches, n_class // 2)`` near-equal chunks (each
    of >= 2 examples), which go to the ``k`` currently smallest batches; so a class is spread over as many batches as
    its size allows, and with balanced classes and ``batch_size >= 2 * n_classes`` every batch holds every class.
    Every example is used once per epoch; there are ``ceil(N / batch_size)`` batches of about ``batch_size``
    examples (a batch may exceed it by a little). Only a class with a single example in the whole data set can
    appear once in a batch (the data allow nothing else). A pure function of (seed, epoch), so resuming is exact.

    Returns:
        index arrays, one per batch, in random order.
    """
    if batch_size < 2:
        raise ConfigError(f"batch_size must be >= 2, got {batch_size}")
    labels = np.asarray([str(x) for x in labels])
    n = len(labels)
    if n == 0:
        return []
    rng = np.random.default_rng([int(seed), int(epoch), 2021])
    n_batches = max(1, math.ceil(n / batch_size))
    members: list[list[int]] = [[] for _ in range(n_batches)]
    sizes = np.zeros(n_batches, dtype=np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    for c in classes[np.lexsort((rng.random(len(classes)), -counts))]:  # largest classes first, ties at random
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = max(1, min(n_batches, len(idx) // 2))
        chunks = np.array_split(idx, k)  # the larger chunks first
        targets = np.lexsort((rng.random(n_batches), sizes))[:k]  # the smallest batches first, ties at random
        for target, chunk in zip(targets, chunks):
            members[target].extend(chunk.tolist())
            sizes[target] += len(chunk)
    batches = [np.asarray(m, dtype=np.int64) for m in members if m]
    if len(batches) > 1 and min(len(b) for b in batches) < 2:  # a lone singleton class: join the smallest batch
        lone = [b for b in batches if len(b) < 2]
        batches = [b for b in batches if len(b) >= 2]
        for b in lone:
            j = int(np.argmin([len(x) for x in batches]))
            batches[j] = np.concatenate([batches[j], b])
    batches = [rng.permutation(b) for b in batches]
    return [batches[i] for i in rng.permutation(len(batches))]


def method_sampler(dataset, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The ``Method.sampler`` of ``scl``: :func:`class_balanced_batches` over the dataset's labels."""
    if dataset.labels is None:
        raise DataError(f"{dataset.source}: scl needs labelled data (a text and a label column)")
    return class_balanced_batches(dataset.labels, batch_size, seed, epoch)
