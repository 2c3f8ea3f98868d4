"""Training objectives: the :class:`Objective` protocol, and the contrastive maths as pure functions."""

from decone.objectives.base import Objective
from decone.objectives.contrastive import InfoNCE, NTXent, SupCon, check_temperature
from decone.objectives.functional import cosine_similarity_matrix, info_nce, nt_xent, supcon

__all__ = ["Objective", "InfoNCE", "NTXent", "SupCon", "check_temperature", "cosine_similarity_matrix", "info_nce", "nt_xent", "supcon"]
