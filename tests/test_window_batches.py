"""WindowBatches: a large file's epoch, grouped by token counts one window at a time."""

from __future__ import annotations

import numpy as np
import pytest

from decone.train.batches import WindowBatches


def _counter(tokens: np.ndarray, calls: list):
    def count(idx):
        calls.append(len(idx))
        return tokens[idx]
    return count


def test_every_example_once_sorted_within_windows_and_tokenised_only_when_reached():
    tokens = np.random.default_rng(0).integers(1, 60, size=1000)
    calls: list = []
    wb = WindowBatches(1000, 16, seed=3, epoch=0, count_tokens=_counter(tokens, calls), window=10)
    assert len(wb) == 63 and calls == []  # 1000 = 62 x 16 + 8; nothing tokenised yet
    first = wb[0]
    assert calls == [160]  # one window of 10 batches
    batches = list(wb)
    assert calls == [160] * 6 + [40]  # each window tokenised once, when reached
    assert (first == batches[0]).all()
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(1000))
    for w in range(7):  # a window's batches are contiguous runs of its token-sorted examples
        window = batches[10 * w : 10 * (w + 1)]
        mins = sorted((int(tokens[b].min()), int(tokens[b].max())) for b in window)
        assert all(hi_prev <= lo for (_, hi_prev), (lo, _) in zip(mins, mins[1:])) or len(window) == 1
    spread = np.mean([np.ptp(tokens[b]) for b in batches[:-1]])
    random_spread = np.mean([np.ptp(tokens[np.random.default_rng(1).permutation(1000)[:16]]) for _ in range(1)])
    assert spread < 0.25 * random_spread


def test_order_is_a_function_of_seed_and_epoch_and_slices_resume_exactly():
    tokens = np.random.default_rng(1).integers(1, 40, size=500)
    a = list(WindowBatches(500, 8, 7, 2, _counter(tokens, []), window=5))
    b = list(WindowBatches(500, 8, 7, 2, _counter(tokens, []), window=5))
    other_epoch = list(WindowBatches(500, 8, 7, 3, _counter(tokens, []), window=5))
    assert all((x == y).all() for x, y in zip(a, b))
    assert not all((x == y).all() for x, y in zip(a, other_epoch))
    resumed = list(WindowBatches(500, 8, 7, 2, _counter(tokens, []), window=5)[23:])  # a run resumed at batch 23
    assert len(resumed) == len(a) - 23 and all((x == y).all() for x, y in zip(a[23:], resumed))
    assert (WindowBatches(500, 8, 7, 2, _counter(tokens, []), window=5)[-1] == a[-1]).all()
    with pytest.raises(IndexError):
        WindowBatches(500, 8, 7, 2, _counter(tokens, []), window=5)[len(a)]


@pytest.mark.parametrize("n,batch,min_size,count,last", [(33, 16, 2, 2, 16), (34, 16, 2, 3, 2), (35, 16, 4, 2, 16),
                                                          (32, 16, 2, 2, 16), (40, 2, 4, 0, None)])
def test_a_short_last_batch_below_min_size_is_dropped(n, batch, min_size, count, last):
    tokens = np.arange(n)
    wb = WindowBatches(n, batch, 0, 0, _counter(tokens, []), window=50, min_size=min_size)
    batches = list(wb)
    assert len(wb) == len(batches) == count  # batches of 2 under 4 processes: none (the trainer says so)
    assert not batches or min(len(b) for b in batches) == min(last, batch)
    assert all(len(b) >= min_size for b in batches)
