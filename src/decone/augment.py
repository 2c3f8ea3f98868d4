"""Augmentations: how a method turns a batch of examples into the views it contrasts.

A view function takes the batch's texts (one tuple per example) and a seeded ``random.Random`` and returns a list of
views, each a list of B strings. All views are encoded in ONE forward pass, in train mode, so each row gets its own
dropout mask: that is SimCSE's "dropout as minimal augmentation" (Gao et al. 2021).
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

Views = list[list[str]]
ViewFn = Callable[[Sequence[tuple[str, ...]], random.Random], Views]


def span_mask(text: str, span: int, mask_token: str, rng: random.Random, min_chars: int = 0) -> str:
    """Replace a random span of ``span`` characters with the tokenizer's mask token (Mirror-BERT, Liu et al. 2021).

    Strings of ``span`` characters or fewer, or of fewer than ``min_chars``, are returned unchanged: masking them
    would leave little signal (Mirror-BERT's code leaves sentences under 30 characters whole).
    """
    if span <= 0 or len(text) <= span or len(text) < min_chars:
        return text
    start = rng.randrange(0, len(text) - span + 1)
    return text[:start] + mask_token + text[start + span :]


def dropout_views(n_views: int = 2) -> ViewFn:
    """Self-duplication: the same text ``n_views`` times; dropout alone makes the views differ (SimCSE unsup)."""

    def views(batch: Sequence[tuple[str, ...]], rng: random.Random) -> Views:
        texts = [row[0] for row in batch]
        return [list(texts) for _ in range(n_views)]

    return views


def span_masked_views(span: int, mask_token: str, min_chars: int = 0) -> ViewFn:
    """Two views of each text, the second with a random span masked (Mirror-BERT sentence level) where the text has
    at least ``min_chars`` characters; plus dropout."""

    def views(batch: Sequence[tuple[str, ...]], rng: random.Random) -> Views:
        texts = [row[0] for row in batch]
        return [list(texts), [span_mask(t, span, mask_token, rng, min_chars) for t in texts]]

    return views


def column_views(n_columns: int | None = None) -> ViewFn:
    """No augmentation: the example's own columns are the views (anchor, positive[, hard negative])."""

    def views(batch: Sequence[tuple[str, ...]], rng: random.Random) -> Views:
        width = n_columns or min(len(row) for row in batch)
        return [[row[k] for row in batch] for k in range(width)]

    return views
