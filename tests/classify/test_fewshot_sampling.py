"""Few-shot sampling and label noise: class balance, exact flip counts, flips only to other classes."""

import math
from pathlib import Path
from collections import Counter

import numpy as np
import pytest

from decone.classify.fewshot import append_run, flip_labels, read_runs, sample_balanced, summarize
from decone.errors import ConfigError, DataError


@pytest.mark.parametrize("n", [7, 20, 100, 101])
@pytest.mark.parametrize("fraction", [0.0, 0.2, 1 / 3, 0.5, 1.0])
@pytest.mark.parametrize("classes", [["0", "1"], ["a", "b", "c", "d", "e", "f"]])
def test_flip_exact_fraction_to_other_classes(n, fraction, classes):
    rng = np.random.default_rng(n)
    labels = [classes[i % len(classes)] for i in range(n)]
    noisy, flipped = flip_labels(labels, fraction, classes, np.random.default_rng(7))
    expected = int(math.floor(fraction * n + 0.5))
    assert len(flipped) == expected == len(set(flipped.tolist()))
    changed = [i for i in range(n) if noisy[i] != labels[i]]
    assert changed == sorted(flipped.tolist())  # every chosen label changes, no other does
    assert all(noisy[i] in classes for i in range(n))


def test_flip_targets_are_uniform_over_other_classes():
    classes = ["a", "b", "c", "d"]
    counts = Counter()
    for seed in range(300):
        noisy, flipped = flip_labels(["a"] * 10, 0.5, classes, np.random.default_rng(seed))
        counts.update(noisy[i] for i in flipped)
    assert set(counts) == {"b", "c", "d"}
    total = sum(counts.values())
    assert all(abs(c / total - 1 / 3) < 0.05 for c in counts.values())


def test_flip_is_deterministic_per_rng():
    labels = ["0", "1"] * 10
    a = flip_labels(labels, 0.2, ["0", "1"], np.random.default_rng(3))
    b = flip_labels(labels, 0.2, ["0", "1"], np.random.default_rng(3))
    assert a[0] == b[0] and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("shots,classes,per_class", [
    (20, ["0", "1"], {"0": 10, "1": 10}),
    (21, ["0", "1"], None),
    (100, ["a", "b", "c", "d", "e", "f"], None),
])
def test_sample_is_class_balanced(shots, classes, per_class):
    labels = np.array([classes[i % len(classes)] for i in range(3000)])
    idx = sample_balanced(labels, classes, shots, np.random.default_rng(0))
    assert len(idx) == shots == len(set(idx.tolist()))
    counts = Counter(labels[idx])
    assert max(counts.values()) - min(counts.values()) <= 1 and set(counts) == set(classes)
    if per_class:
        assert dict(counts) == per_class


def test_sample_errors():
    labels = ["a"] * 50 + ["b"] * 3
    with pytest.raises(ConfigError, match="at least 2 per class"):
        sample_balanced(labels, ["a", "b"], 3, np.random.default_rng(0))
    with pytest.raises(DataError, match="class 'b' has 3"):
        sample_balanced(labels, ["a", "b"], 20, np.random.default_rng(0))


def test_read_runs_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"shots": 20, "seed": 0}\n{"shots": 20, "seed": 1}\n{"shots": 2')
    assert [r["seed"] for r in read_runs(path)] == [0, 1]
    assert path.read_text().endswith("}\n")


def test_read_runs_keeps_a_whole_last_line_without_newline_and_the_next_append_does_not_join_it(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"seed": 0}\n{"seed": 1}')
    assert [r["seed"] for r in read_runs(path)] == [0, 1] and path.read_text() == '{"seed": 0}\n{"seed": 1}'
    append_run(path, {"seed": 2})
    assert [r["seed"] for r in read_runs(path)] == [0, 1, 2] and path.read_text().endswith('{"seed": 2}\n')


def test_read_runs_skips_a_bad_line_but_keeps_the_rows_after_it_and_opens_for_writing_only_to_cut(tmp_path,
                                                                                                   monkeypatch):
    """A crash mid-write by one invocation, then rows appended by another side by side: those rows are kept. A
    clean file is only read (--report-only works on a read-only checkout)."""
    import builtins

    from decone.classify import fewshot

    modes = []
    monkeypatch.setattr(fewshot, "open", lambda *a, **k: modes.append(a[1]) or builtins.open(*a, **k), raising=False)
    path = tmp_path / "runs.jsonl"
    path.write_text('{"seed": 0}\n{"seed": 1, "acc\n{"seed": 2}\n')
    assert [r["seed"] for r in read_runs(path)] == [0, 2] and modes == ["rb"]
    path.write_text('{"seed": 0}\n{"se')
    assert [r["seed"] for r in read_runs(path)] == [0] and modes == ["rb", "rb", "r+b"]
    assert path.read_text() == '{"seed": 0}\n'


def _append_many(path: str, writer: int, n: int) -> None:
    for i in range(n):
        append_run(Path(path), {"writer": writer, "i": i, "pad": "x" * 3000})


def test_runs_appended_side_by_side_while_another_reads_are_all_kept(tmp_path):
    """Invocations side by side (--only-seeds) append to one runs.jsonl while others read it: a reader must never
    take a line still being written for a torn tail and cut it off."""
    import multiprocessing

    path = tmp_path / "runs.jsonl"
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_append_many, args=(str(path), w, 60)) for w in range(2)]
    for w in writers:
        w.start()
    while any(w.is_alive() for w in writers):
        read_runs(path)
    for w in writers:
        w.join()
        assert w.exitcode == 0
    rows = read_runs(path)
    assert sorted((r["writer"], r["i"]) for r in rows) == [(w, i) for w in range(2) for i in range(60)]


def test_summarize_mean_std_and_paired_delta():
    rows = [dict(shots=20, noise=0.0, seed=s, accuracy=a, **{"lambda": lam})
            for lam, accs in ((0.0, [0.5, 0.6, 0.7]), (0.9, [0.6, 0.6, 0.8])) for s, a in enumerate(accs)]
    ce, scl = summarize(rows)
    assert ce["mean"] == pytest.approx(0.6) and ce["std"] == pytest.approx(0.1) and ce["delta"] is None
    assert scl["delta"] == pytest.approx(0.2 / 3) and scl["delta_wins"] == 2 and scl["delta_n"] == 3


def test_cv_task_holds_out_a_fixed_stratified_test_set():
    from decone.classify.tasks import fewshot_splits

    task = {"train": [(f"n{i}", "neg") for i in range(50)] + [(f"p{i}", "pos") for i in range(30)], "test": None,
            "labels": ["neg", "pos"]}
    pool, test = fewshot_splits(task)
    assert Counter(y for _, y in test) == {"neg": 5, "pos": 3}
    assert not {t for t, _ in pool} & {t for t, _ in test} and len(pool) + len(test) == 80
    assert fewshot_splits(task) == (pool, test)  # independent of any run seed
    _, small = fewshot_splits({**task, "test": task["train"]}, test_size=16)
    assert Counter(y for _, y in small) == {"neg": 10, "pos": 6}


def test_draw_shots_is_shared_across_noise_and_systems():
    """draw_shots is what every system of a setting sees: the sample depends on (seed, shots) only, the flips on
    (seed, shots, noise); the same call gives the same draw; noise 0 flips nothing."""
    from decone.classify.fewshot import draw_shots

    classes = ["a", "b", "c"]
    pool = [classes[i % 3] for i in range(300)]
    clean, labels0, flipped0 = draw_shots(pool, classes, 24, 0.0, seed=3)
    noisy, labels4, flipped4 = draw_shots(pool, classes, 24, 0.4, seed=3)
    again = draw_shots(pool, classes, 24, 0.4, seed=3)
    assert (clean == noisy).all() and Counter(pool[i] for i in clean) == {"a": 8, "b": 8, "c": 8}
    assert labels0 == [pool[i] for i in clean] and len(flipped0) == 0
    assert len(flipped4) == round(0.4 * 24) and labels4 == again[1] and (flipped4 == again[2]).all()
    assert sum(x != pool[i] for x, i in zip(labels4, noisy)) == len(flipped4)
    other, _, _ = draw_shots(pool, classes, 24, 0.0, seed=4)
    assert not (other == clean).all()
