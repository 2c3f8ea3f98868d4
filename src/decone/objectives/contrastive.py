"""InfoNCE, NT-Xent and SupCon as objectives: the pure functions of :mod:`decone.objectives.functional` with their settings."""

from __future__ import annotations

from torch import Tensor

from decone.errors import ConfigError
from decone.objectives.base import Objective
from decone.objectives.functional import info_nce, nt_xent, supcon


def check_temperature(temperature: float) -> float:
    if not temperature > 0 or temperature == float("inf"):
        raise ConfigError(f"temperature must be > 0 and finite, got {temperature}")
    return float(temperature)


class InfoNCE(Objective):
    """InfoNCE over in-batch negatives on views [anchors, positives] or [anchors, positives, hard negatives].

    See :func:`decone.objectives.functional.info_nce`. One-directional InfoNCE takes local anchors against gathered
    candidates under several processes; the symmetric one takes the whole gathered batch (its backward term
    contrasts each positive with the anchors, which would otherwise be local only).
    """

    def __init__(self, temperature: float = 0.05, hard_negative_weight: float = 0.0, symmetric: bool = False):
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.hard_negative_weight = float(hard_negative_weight)
        self.symmetric = symmetric
        self.supports_offset = not symmetric

    def compute_loss_from_embeddings(self, anchors: Tensor, positives: Tensor, hard_negatives: Tensor | None = None,
                                     offset: int = 0) -> Tensor:
        """anchors (N, d); positives (M, d) with M >= offset + N; hard_negatives (M, d) or None -> scalar."""
        return info_nce(anchors, positives, self.temperature, hard_negatives, self.hard_negative_weight,
                        self.symmetric, offset)

    def loss_from_embeddings(self, views: list[Tensor], labels: Tensor | None = None, offset: int = 0) -> Tensor:
        """views: [anchors, positives] or [anchors, positives, hard_negatives], each (N, d)."""
        return self.compute_loss_from_embeddings(*views[:3], offset=offset)


class NTXent(Objective):
    """NT-Xent on views [a, b]: both views anchor, with negatives from both; see
    :func:`decone.objectives.functional.nt_xent`. Under several processes it takes the whole gathered batch."""

    def __init__(self, temperature: float):
        super().__init__()
        self.temperature = check_temperature(temperature)

    def compute_loss_from_embeddings(self, a: Tensor, b: Tensor) -> Tensor:
        """a (N, d), b (N, d) -> scalar."""
        return nt_xent(a, b, self.temperature)

    def loss_from_embeddings(self, views: list[Tensor], labels: Tensor | None = None, offset: int = 0) -> Tensor:
        """views: [a, b], each (N, d)."""
        return self.compute_loss_from_embeddings(views[0], views[1])


class SupCon(Objective):
    """Supervised contrastive loss on one view of labelled examples; see :func:`decone.objectives.functional.supcon`."""

    def __init__(self, temperature: float = 0.3):
        super().__init__()
        self.temperature = check_temperature(temperature)

    def compute_loss_from_embeddings(self, features: Tensor, labels: Tensor) -> Tensor:
        """features (N, d), labels (N,) -> scalar."""
        return supcon(features, labels, self.temperature)

    def loss_from_embeddings(self, views: list[Tensor], labels: Tensor | None = None, offset: int = 0) -> Tensor:
        return self.compute_loss_from_embeddings(views[0], labels)
