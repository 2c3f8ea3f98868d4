"""The order of a run's batches: a pure function of (seed, epoch), so a resumed run sees the same batches."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from decone.encoder import Encoder


def batch_order(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[np.ndarray]:
    """The batches of one epoch, a pure function of (seed, epoch) so a resumed run sees the same order.

    With ``group_by_length``, a random permutation is cut into mega-batches of 50 batches, each sorted by length
    and split, and the batches are shuffled: batches hold texts of similar length (little padding) while their
    order stays random. A last batch with fewer than 2 examples is dropped (no negatives).
    """
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(len(lengths))
    lengths = np.asarray(lengths)
    if group_by_length:
        mega = batch_size * 50
        perm = np.concatenate([
            chunk[np.argsort(-lengths[chunk], kind="stable")] for chunk in np.array_split(perm, max(1, math.ceil(len(perm) / mega)))
        ])
    batches = [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]
    batches = [b for b in batches if len(b) >= 2]
    if group_by_length:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


class WindowBatches:
    """One epoch's batches over a large file, grouped by token counts one window at a time.

    The epoch's random permutation of the N examples (``default_rng([seed, epoch])``, as :func:`batch_order`) is cut
    into windows of ``window`` batches (``window * batch_size`` examples). The first time a batch of a window is asked
    for, ``count_tokens(indices)`` gives that window's token counts (a few thousand lines tokenised, milliseconds), the
    window is sorted by them (longest first) and cut into batches, and those batches are shuffled
    (``default_rng([seed, epoch, w])``). So no line is tokenised before the first step, a batch's padding is as small
    as with :func:`batch_order` over token counts, and the order is still a pure function of (seed, epoch) and the
    data, so ``--resume`` and every DDP process see the same batches. Windows come in the permutation's order; each
    window is a uniform random sample of the data. Only the last window can end in a short batch; one shorter than
    ``min_size`` is dropped (2: a batch needs negatives; the world size under DDP).

    Indexing with an int gives an index array; a slice gives an iterator (windows are tokenised as it reaches them).
    """

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, count_tokens=None, window: int = 50,
                 min_size: int = 2):
        self.batch_size, self.seed, self.epoch, self.count_tokens = batch_size, seed, epoch, count_tokens
        self.perm = np.random.default_rng([seed, epoch]).permutation(n)
        span = batch_size * window
        self.windows = [self.perm[i : i + span] for i in range(0, n, span)]
        sizes = [math.ceil(len(w) / batch_size) for w in self.windows]
        if batch_size < min_size:  # every batch too small (under DDP: fewer examples than processes): no batches
            sizes = [0] * len(sizes)
        elif self.windows and len(self.windows[-1]) % batch_size and len(self.windows[-1]) % batch_size < min_size:
            sizes[-1] -= 1  # the short last batch
        self.first = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # each window's first batch number
        self._cache: tuple[int, list[np.ndarray]] | None = None

    def __len__(self) -> int:
        return int(self.first[-1])

    def window_batches(self, w: int) -> list[np.ndarray]:
        if self._cache is None or self._cache[0] != w:
            if self.count_tokens is None:
                raise RuntimeError("WindowBatches.count_tokens is not set")
            idx = self.windows[w]
            tokens = np.asarray(self.count_tokens(idx))
            order = idx[np.argsort(-tokens, kind="stable")]
            batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
            batches = batches[: int(self.first[w + 1] - self.first[w])]
            rng = np.random.default_rng([self.seed, self.epoch, w])
            self._cache = (w, [batches[i] for i in rng.permutation(len(batches))])
        return self._cache[1]

    def __getitem__(self, k):
        if isinstance(k, slice):
            return (self[i] for i in range(*k.indices(len(self))))
        k = int(k) + (len(self) if k < 0 else 0)
        if not 0 <= k < len(self):
            raise IndexError(k)
        w = int(np.searchsorted(self.first, k, side="right")) - 1
        return self.window_batches(w)[k - int(self.first[w])]

    def __iter__(self):
        return self[:]


def token_lengths(encoder: Encoder, examples: Sequence[tuple[str, ...]], max_length: int, chunk: int = 4096) -> list[int]:
    """Each example's token count (its texts summed, each truncated to ``max_length``): the key of length grouping.

    Grouping by tokens rather than characters is what keeps a batch's padding small: on the STS-B 10k sentences
    batches are 97% real tokens this way, 74% when grouped by characters.
    """
    out: list[int] = []
    for i in range(0, len(examples), chunk):
        part = examples[i : i + chunk]
        width = max(len(ex) for ex in part)
        per_column = [encoder.tokenize_ids([ex[c] if c < len(ex) else "" for ex in part], max_length).lengths()
                      for c in range(width)]
        out.extend(int(x) for x in np.sum(per_column, axis=0))
    return out
