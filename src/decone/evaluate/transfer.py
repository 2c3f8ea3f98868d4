"""SentEval transfer tasks: logistic regression on frozen sentence embeddings.

Tasks and protocols (SentEval's data; Conneau & Kiela 2018):

=======  =====================  ==========================================================================
task     examples               protocol
=======  =====================  ==========================================================================
MR       10,662 (2 classes)     10-fold stratified CV; C chosen per outer fold on an inner stratified split
CR       3,775 (2)              same
SUBJ     10,000 (2)             same
MPQA     10,606 (2)             same
SST2     67,349 / 872 / 1,821   train / dev / test: C chosen on dev, model trained on train
TREC     5,452 / 500 (6)        train / test; C chosen on a seeded stratified 10% of train held out as dev,
                                then refit on all of train
MRPC     4,076 / 1,725 (2)      same as TREC; pair features [u, v, |u - v|, u * v]
=======  =====================  ==========================================================================

Features are standardised (mean 0, variance 1, fitted on the training part) and the classifier is scikit-learn's
``LogisticRegression`` (lbfgs), C from :data:`C_GRID`, warm-started along the grid. Accuracy x 100 is reported
(MRPC also F1), with the seed.

:func:`load_task` is the reusable reader: ``{"train": [(text, label)], "dev": [...] | None, "test": [...] | None,
"labels": [names]}``, labels being indices into ``labels``; MRPC examples are ``((s1, s2), label)``; the CV tasks put
every example in ``train``.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from decone.errors import DataError
from decone.evaluate import core
from decone.evaluate.data import locate, numbered, resolve_names

TRANSFER_TASKS = ("MR", "CR", "SUBJ", "MPQA", "SST2", "TREC", "MRPC")
CV_TASKS = ("MR", "CR", "SUBJ", "MPQA")
C_GRID = (0.001, 0.01, 0.1, 1.0)
DEFAULT_SEED = 1111  # SentEval's
ALIASES = {t.lower(): t for t in TRANSFER_TASKS} | {"sst": "SST2", "sst-2": "SST2"}

# task -> (file, label index) for the one-file-per-class tasks; label names in BINARY_LABELS
_CLASS_FILES = {
    "MR": (("MR/rt-polarity.neg", 0), ("MR/rt-polarity.pos", 1)),
    "CR": (("CR/custrev.neg", 0), ("CR/custrev.pos", 1)),
    "SUBJ": (("SUBJ/subj.subjective", 0), ("SUBJ/subj.objective", 1)),
    "MPQA": (("MPQA/mpqa.neg", 0), ("MPQA/mpqa.pos", 1)),
}
_LABELS = {
    "MR": ["negative", "positive"], "CR": ["negative", "positive"], "SUBJ": ["subjective", "objective"],
    "MPQA": ["negative", "positive"], "SST2": ["negative", "positive"],
    "TREC": ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"], "MRPC": ["not_paraphrase", "paraphrase"],
}
_SPLIT_FILES = {
    "SST2": {"train": "SST/binary/sentiment-train", "dev": "SST/binary/sentiment-dev", "test": "SST/binary/sentiment-test"},
    "TREC": {"train": "TREC/train_5500.label", "test": "TREC/TREC_10.label"},
    "MRPC": {"train": "MRPC/msr_paraphrase_train.txt", "test": "MRPC/msr_paraphrase_test.txt"},
}


def _clean(text: str) -> str:
    return " ".join(text.split())


def resolve_tasks(tasks: Sequence[str] | None) -> tuple[str, ...]:
    return resolve_names(tasks, TRANSFER_TASKS, ALIASES, "transfer task", TRANSFER_TASKS)


def task_files(name: str) -> list[str]:
    """Files of a task, relative to the data root."""
    if name in _CLASS_FILES:
        return [f"classification/{f}" for f, _ in _CLASS_FILES[name]]
    return [f"classification/{f}" for f in _SPLIT_FILES[name].values()]


# ---------------------------------------------------------------------- readers
def read_class_file(path, label: int) -> list[tuple[str, int]]:
    """One sentence a line, all of one class. Blank lines are kept as empty texts, as SentEval does."""
    return [(_clean(line), label) for _, line in numbered(path)]


def read_sst(path) -> list[tuple[str, int]]:
    """``text<TAB>label`` a line."""
    out = []
    for lineno, line in numbered(path):
        if not line.strip():
            continue
        text, sep, label = line.rpartition("\t")
        if not sep or not label.strip().lstrip("-").isdigit():
            raise DataError(f"{path}:{lineno}: expected 'text<TAB>label' with an integer label")
        out.append((_clean(text), int(label)))
    return out


def read_trec(path) -> list[tuple[str, int]]:
    """``LABEL:sub text`` a line; the coarse label is the part before ':'."""
    names = _LABELS["TREC"]
    out = []
    for lineno, line in numbered(path):
        if not line.strip():
            continue
        head, _, text = line.strip().partition(" ")
        coarse = head.split(":", 1)[0]
        if ":" not in head or coarse not in names:
            raise DataError(f"{path}:{lineno}: expected 'LABEL:sub question' with LABEL one of {', '.join(names)}, "
                            f"found {head[:30]!r}")
        out.append((_clean(text), names.index(coarse)))
    return out


def read_mrpc(path) -> list[tuple[tuple[str, str], int]]:
    """MSR paraphrase corpus: tab-separated with a header (Quality, #1 ID, #2 ID, #1 String, #2 String)."""
    out = []
    for lineno, line in numbered(path, skip_header=True):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 5 or fields[0].strip() not in ("0", "1"):
            raise DataError(f"{path}:{lineno}: expected Quality (0/1), #1 ID, #2 ID, #1 String, #2 String, tab-separated")
        out.append(((_clean(fields[3]), _clean(fields[4])), int(fields[0])))
    return out


def load_task(name: str, data_dir: str | os.PathLike | None = None) -> dict:
    """Read one classification set.

    Returns ``{"train": [(text, label)], "dev": [...] or None, "test": [...] or None, "labels": [names]}``; a label
    is an index into ``labels``. MRPC examples are ``((s1, s2), label)``. For the CV tasks (MR, CR, SUBJ, MPQA)
    every example is in ``train`` and ``test`` is None; only SST2 has a distributed dev set.
    """
    (name,) = resolve_tasks([name])
    root = Path(locate(f"{name} classification", data_dir, task_files(name))) / "classification"
    out: dict = {"train": [], "dev": None, "test": None, "labels": list(_LABELS[name])}
    if name in _CLASS_FILES:
        for rel, label in _CLASS_FILES[name]:
            out["train"] += read_class_file(root / rel, label)
        return out
    reader = {"SST2": read_sst, "TREC": read_trec, "MRPC": read_mrpc}[name]
    for split, rel in _SPLIT_FILES[name].items():
        out[split] = reader(root / rel)
    if name == "SST2":
        for split in ("train", "dev", "test"):
            for i, (_, y) in enumerate(out[split]):
                if y not in (0, 1):
                    raise DataError(f"{root / _SPLIT_FILES[name][split]}:{i + 1}: SST-2 label must be 0 or 1, got {y}")
    check_task(name, out, source=root)
    return out


def _train_subset(train: list, max_train: int | None, seed: int) -> list:
    """``max_train`` training examples drawn with ``seed`` (all of them where ``max_train`` is None or larger)."""
    if max_train is None or len(train) <= max_train:
        return list(train)
    rng = np.random.default_rng(seed)
    return [train[i] for i in sorted(rng.choice(len(train), size=max_train, replace=False))]


def check_task(name: str, data: dict, max_train: int | None = None, seed: int = DEFAULT_SEED, source=None) -> None:
    """Raise a one-line error where the protocol cannot run on ``data``: an empty split, fewer than 2 classes in
    training, or too few examples of a class for the cross-validation folds / the held-out dev split.

    ``max_train`` checks the subsample that :func:`evaluate_task` would draw with ``seed``."""
    from decone.errors import ConfigError

    where = f"{name} ({source})" if source is not None else name
    train = _train_subset(data["train"], max_train, seed)
    subsampled = f" after --max-train {max_train}" if max_train is not None and len(data["train"]) > max_train else ""
    error = ConfigError if subsampled else DataError
    for split in ("dev", "test"):
        if data.get(split) is not None and not data[split]:
            raise DataError(f"{where}: the {split} set is empty")
    counts = {label: 0 for label in range(len(data["labels"]))}
    for _, y in train:
        counts[y] = counts.get(y, 0) + 1
    present = {y: n for y, n in counts.items() if n}
    if len(present) < 2:
        raise error(f"{where}: the training set{subsampled} has {len(train)} examples of {len(present)} class(es); "
                    "a classifier needs at least 2 classes")
    if name in CV_TASKS:
        need = 10  # a member in every one of the 10 stratified folds
    elif not data.get("dev"):
        need = 2  # one in the held-out dev split, one to train on
        if math.ceil(0.1 * len(train)) < len(present):
            raise error(f"{where}: {len(train)} training examples{subsampled}: the held-out 10% dev split needs one "
                        f"example of each of the {len(present)} classes, so at least {10 * len(present)} examples")
    else:
        need = 1
    labels = data["labels"]
    for y, n in counts.items():
        if n < need:
            name_y = labels[y] if isinstance(y, int) and 0 <= y < len(labels) else y
            raise error(f"{where}: class {name_y!r} has {n} training examples{subsampled}; the protocol needs at "
                        f"least {need}")


# ---------------------------------------------------------------------- features and classifier
def pair_features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """MRPC features [u, v, |u - v|, u * v]: (n, d), (n, d) -> (n, 4d)."""
    u = np.asarray(u, dtype=np.float32)
    v = np.asarray(v, dtype=np.float32)
    if u.shape != v.shape:
        raise ValueError(f"pair_features: shapes differ {u.shape} vs {v.shape}")
    return np.concatenate([u, v, np.abs(u - v), u * v], axis=1)


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu = train.mean(axis=0)
    sd = train.std(axis=0)
    sd[sd < 1e-8] = 1.0
    return [(x - mu) / sd for x in (train, *others)]


def _fit_path(x: np.ndarray, y: np.ndarray, grid: Sequence[float], seed: int) -> list:
    """Logistic regression fitted for each C of ascending ``grid``, each warm-started from the previous one."""
    import copy

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=grid[0], solver="lbfgs", max_iter=1000, tol=1e-4, warm_start=True, random_state=seed)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in sorted(grid):
            clf.set_params(C=c)
            clf.fit(x, y)
            out.append(copy.deepcopy(clf))
    return out


def select_and_fit(x_tr: np.ndarray, y_tr: np.ndarray, x_dev: np.ndarray, y_dev: np.ndarray,
                   grid: Sequence[float] = C_GRID, seed: int = DEFAULT_SEED):
    """Fit on (x_tr, y_tr) for each C of ``grid`` and keep the best on (x_dev, y_dev).

    Features must already be standardised. Ties go to the smaller C. -> (classifier, C, dev accuracy x 100).
    """
    grid = sorted(grid)
    models = _fit_path(x_tr, y_tr, grid, seed)
    dev_accs = [float((m.predict(x_dev) == y_dev).mean() * 100) for m in models]
    best = int(np.argmax(dev_accs))
    return models[best], grid[best], dev_accs[best]


def cross_validate(x: np.ndarray, y: np.ndarray, folds: int = 10, seed: int = DEFAULT_SEED, grid: Sequence[float] = C_GRID,
                   dev_fraction: float = 0.1) -> dict:
    """Stratified k-fold accuracy; in each outer fold C is chosen on a stratified ``dev_fraction`` of the training
    part, then the classifier is refit on the whole training part. -> {acc, std, dev_acc, C (per fold)}."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    accs, dev_accs, cs = [], [], []
    for k, (tr, te) in enumerate(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y)):
        inner_tr, inner_dev = train_test_split(np.arange(len(tr)), test_size=dev_fraction, random_state=seed + k,
                                               stratify=y[tr])
        xs = _standardise(x[tr][inner_tr], x[tr][inner_dev])
        _, c, dev_acc = select_and_fit(xs[0], y[tr][inner_tr], xs[1], y[tr][inner_dev], grid, seed)
        x_tr, x_te = _standardise(x[tr], x[te])
        clf = _refit(x_tr, y[tr], c, seed, grid)
        accs.append(float((clf.predict(x_te) == y[te]).mean() * 100))
        dev_accs.append(dev_acc)
        cs.append(c)
    return {"acc": float(np.mean(accs)), "std": float(np.std(accs)), "dev_acc": float(np.mean(dev_accs)), "C": cs,
            "folds": folds}


def _refit(x, y, c, seed, grid):
    """Fit with C = c, warm-started along the grid values up to c (faster than a cold fit at large C)."""
    path = [g for g in sorted(grid) if g <= c] or [c]
    return _fit_path(x, y, path, seed)[-1]


def split_dev(n: int, labels: np.ndarray, seed: int, fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A seeded stratified split of range(n) into (train, dev) indices."""
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(n), test_size=fraction, random_state=seed, stratify=labels)


# ---------------------------------------------------------------------- evaluation
def _embed(encoder, texts: Sequence[str], batch_size: int, bf16) -> dict[str, np.ndarray]:
    unique = list(dict.fromkeys(texts))
    return dict(zip(unique, core.encode(encoder, unique, batch_size=batch_size, bf16=bf16)))


def features(encoder, examples: Sequence, batch_size: int = 64, bf16: bool | None = False, lookup=None) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) for examples ``(text, label)`` or ``((s1, s2), label)`` (pair features, see :func:`pair_features`)."""
    pairs = bool(examples) and isinstance(examples[0][0], tuple)
    texts = [s for ex in examples for s in (ex[0] if pairs else (ex[0],))]
    lookup = lookup if lookup is not None else _embed(encoder, texts, batch_size, bf16)
    y = np.array([ex[1] for ex in examples], dtype=np.int64)
    if pairs:
        u = np.stack([lookup[ex[0][0]] for ex in examples])
        v = np.stack([lookup[ex[0][1]] for ex in examples])
        return pair_features(u, v), y
    return np.stack([lookup[ex[0]] for ex in examples]).astype(np.float32), y


def evaluate_task(encoder, name: str, data_dir=None, batch_size: int = 64, bf16: bool | None = False,
                  seed: int = DEFAULT_SEED, grid: Sequence[float] = C_GRID, data: dict | None = None,
                  max_train: int | None = None) -> dict:
    """One transfer task -> {acc, (f1), C, dev_acc, n_train, n_dev, n_test, protocol, seed, encode_seconds, seconds}.

    ``max_train`` subsamples the training examples (seeded, for quick runs; not the standard protocol).
    """
    (name,) = resolve_tasks([name])
    with core.Timer() as total:
        data = data if data is not None else load_task(name, data_dir)
        check_task(name, data, max_train, seed)
        train = _train_subset(data["train"], max_train, seed)
        splits = {"train": train, "dev": data.get("dev") or [], "test": data.get("test") or []}
        texts = [s for ex in (*splits["train"], *splits["dev"], *splits["test"])
                 for s in (ex[0] if isinstance(ex[0], tuple) else (ex[0],))]
        with core.Timer() as enc_t:
            lookup = _embed(encoder, texts, batch_size, bf16)
        x, y = features(encoder, splits["train"], lookup=lookup)
        res: dict = {"seed": seed, "n_train": len(train), "grid": list(grid)}
        if name in CV_TASKS:
            cv = cross_validate(x, y, folds=10, seed=seed, grid=grid)
            res.update(acc=cv["acc"], std=cv["std"], dev_acc=cv["dev_acc"], C=cv["C"], n_dev=0, n_test=0,
                       protocol="10-fold stratified CV, C on an inner 10% split")
        else:
            x_te, y_te = features(encoder, splits["test"], lookup=lookup)
            if splits["dev"]:
                x_dev, y_dev = features(encoder, splits["dev"], lookup=lookup)
                x_tr, x_dev_s, x_te_s = _standardise(x, x_dev, x_te)
                clf, c, dev_acc = select_and_fit(x_tr, y, x_dev_s, y_dev, grid, seed)
                protocol = "train/dev/test, C on dev"
                n_dev = len(y_dev)
            else:
                tr, dv = split_dev(len(y), y, seed)
                x_tr, x_dv = _standardise(x[tr], x[dv])
                _, c, dev_acc = select_and_fit(x_tr, y[tr], x_dv, y[dv], grid, seed)
                x_all, x_te_s = _standardise(x, x_te)
                clf = _refit(x_all, y, c, seed, grid)
                protocol = "train/test, C on a seeded stratified 10% of train, refit on all of train"
                n_dev = len(dv)
            pred = clf.predict(x_te_s)
            res.update(acc=float((pred == y_te).mean() * 100), C=c, dev_acc=dev_acc, n_dev=n_dev, n_test=len(y_te),
                       protocol=protocol)
            if name == "MRPC":
                from sklearn.metrics import f1_score

                res["f1"] = float(f1_score(y_te, pred) * 100)
    res["encode_seconds"] = enc_t.seconds
    res["seconds"] = total.seconds
    return res


def evaluate_transfer(encoder, data_dir=None, tasks: Sequence[str] | None = None, batch_size: int = 64,
                      bf16: bool | None = False, seed: int = DEFAULT_SEED, grid: Sequence[float] = C_GRID,
                      max_train: int | None = None, data: dict | None = None, progress=None) -> dict:
    """Evaluate on the transfer tasks -> {"tasks": {name: evaluate_task(...)}, "avg": mean accuracy, "seed"}.

    ``data`` maps task names to preloaded :func:`load_task` output; ``progress(name)`` is called before each task.
    """
    tasks = resolve_tasks(tasks)
    data = data or {}
    # find every task's data before spending time on the first one
    loaded = {t: data[t] if t in data else load_task(t, data_dir) for t in tasks}
    results = {}
    for t in tasks:
        if progress is not None:
            progress(t)
        results[t] = evaluate_task(encoder, t, batch_size=batch_size, bf16=bf16, seed=seed, grid=grid,
                                   data=loaded[t], max_train=max_train)
    return {"tasks": results, "avg": core.mean(r["acc"] for r in results.values()), "seed": seed,
            "seconds": sum(r["seconds"] for r in results.values())}
