"""The scl batch sampler: every class present in a batch appears at least twice."""

import math
from collections import Counter

import numpy as np
import pytest

from decone.classify.scl import class_balanced_batches


def _labels(kind, rng):
    if kind == "balanced2":
        return ["0", "1"] * 50
    if kind == "balanced6":
        return [str(i % 6) for i in range(120)]
    if kind == "skewed":
        return ["a"] * 95 + ["b"] * 5
    if kind == "tiny":
        return ["a", "a", "b", "b"]
    if kind == "odd":
        return ["a"] * 7 + ["b"] * 3 + ["c"] * 2
    if kind == "random":
        return [str(x) for x in rng.choice(5, size=int(rng.integers(10, 80)), p=[0.5, 0.2, 0.15, 0.1, 0.05])]
    if kind == "singleton":
        return ["a"] * 10 + ["b"] * 9 + ["lone"]
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["balanced2", "balanced6", "skewed", "tiny", "odd", "random", "singleton"])
@pytest.mark.parametrize("batch_size", [2, 4, 16, 32])
@pytest.mark.parametrize("epoch", [0, 1, 2])
def test_at_least_two_per_class_per_batch(kind, batch_size, epoch):
    labels = _labels(kind, np.random.default_rng(epoch * 100 + batch_size))
    totals = Counter(labels)
    batches = class_balanced_batches(labels, batch_size, seed=3, epoch=epoch)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(labels)))  # each example exactly once per epoch
    assert len(batches) <= math.ceil(len(labels) / batch_size)
    for b in batches:
        assert len(b) >= 2
        for label, count in Counter(labels[i] for i in b).items():
            if totals[label] >= 2:
                assert count >= 2, (label, count, [labels[i] for i in b])


@pytest.mark.parametrize("n_classes,batch_size", [(2, 16), (2, 4), (6, 16), (6, 12)])
def test_balanced_data_puts_every_class_in_every_batch(n_classes, batch_size):
    labels = [str(i % n_classes) for i in range(n_classes * 20)]
    for epoch in range(3):
        for b in class_balanced_batches(labels, batch_size, seed=0, epoch=epoch):
            assert {labels[i] for i in b} == set(map(str, range(n_classes)))
            assert len(b) <= batch_size + 2


def test_deterministic_per_seed_and_epoch():
    labels = ["a", "b", "c"] * 30
    one = class_balanced_batches(labels, 16, seed=1, epoch=4)
    two = class_balanced_batches(labels, 16, seed=1, epoch=4)
    assert all(np.array_equal(x, y) for x, y in zip(one, two)) and len(one) == len(two)
    other = class_balanced_batches(labels, 16, seed=1, epoch=5)
    assert any(not np.array_equal(x, y) for x, y in zip(one, other))
