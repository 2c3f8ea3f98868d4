"""benchmarks/token_baseline_draw.py: both exact baselines equal a brute-force loop over the pairs they average."""

from __future__ import annotations

import numpy as np

from tests._bench import bench_module


def test_both_draws_equal_their_brute_force_definition_and_differ_with_unequal_lengths():
    m = bench_module("token_baseline_draw")
    rng = np.random.default_rng(0)
    sid = np.repeat(np.arange(5), [7, 1, 3, 2, 6])  # unequal sentence lengths
    x = rng.normal(size=(len(sid), 8)) + np.where(sid[:, None] % 2 == 0, 1.5, 0.0)  # long sentences share a direction
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    occ = [unit[i] @ unit[j] for i in range(len(sid)) for j in range(len(sid)) if sid[i] != sid[j]]
    sen = [np.mean([unit[i] @ unit[j] for i in np.flatnonzero(sid == s) for j in np.flatnonzero(sid == t)])
           for s in range(5) for t in range(5) if s != t]
    assert np.isclose(m.occurrence_uniform(unit, sid), np.mean(occ), atol=1e-12)
    assert np.isclose(m.sentence_uniform(unit, sid), np.mean(sen), atol=1e-12)
    assert abs(m.occurrence_uniform(unit, sid) - m.sentence_uniform(unit, sid)) > 0.01
    same = np.repeat(np.arange(4), 3)  # equal lengths: the two draws are the same average
    assert np.isclose(m.occurrence_uniform(unit[:12], same), m.sentence_uniform(unit[:12], same), atol=1e-12)
