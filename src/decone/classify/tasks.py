"""The SentEval classification tasks for the few-shot protocol.

:func:`load_task` uses the evaluation package's reader (``decone.evaluate.transfer.load_task``) where it exists and a
small reader of its own otherwise; both read the SentEval layout under ``<data dir>/classification``:

| task | files | classes |
|---|---|---|
| SST-2 | ``SST/binary/sentiment-{train,dev,test}``: ``text<TAB>label`` | 0, 1 |
| MR, CR, SUBJ, MPQA | one file per class (``rt-polarity.{neg,pos}``, ...) | neg/pos, objective/subjective |
| TREC | ``TREC/train_5500.label``, ``TREC/TREC_10.label``: ``LABEL:sub text`` (coarse label) | 6 |
| MRPC | ``MRPC/msr_paraphrase_{train,test}.txt`` (tab-separated, header) | 0, 1 |

MRPC pairs become one text, ``s1 [SEP] s2`` (see :func:`decone.data.join_pair`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from decone.errors import DataError

TASKS = ("SST-2", "MR", "CR", "SUBJ", "MPQA", "TREC", "MRPC")
_ALIASES = {t.lower().replace("-", ""): t for t in TASKS} | {"sst": "SST-2", "sst2": "SST-2"}
_TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
_TWO_FILES = {
    "MR": ("MR", "rt-polarity", ("neg", "pos")),
    "CR": ("CR", "custrev", ("neg", "pos")),
    "SUBJ": ("SUBJ", "subj", ("objective", "subjective")),
    "MPQA": ("MPQA", "mpqa", ("neg", "pos")),
}


def canonical_task(name: str) -> str:
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key not in _ALIASES:
        raise DataError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return _ALIASES[key]


def load_task(name: str, data_dir: str | os.PathLike | None = None, separator: str = "[SEP]") -> dict:
    """``dict(train, dev, test, labels)``: lists of (text, label) with label names as strings (dev/test may be None).

    Sentence pairs are joined into one text with ``separator``.
    """
    task = canonical_task(name)
    try:
        from decone.evaluate.transfer import load_task as shared_load_task  # the evaluation package's reader
    except ImportError:
        shared_load_task = None
    if shared_load_task is not None:
        raw = shared_load_task(task, data_dir)
    else:
        raw = _load_task(task, data_dir)
    names = [str(y) for y in raw.get("labels") or sorted({str(y) for _, y in raw["train"]})]
    out = {"name": task, "labels": names}
    for split in ("train", "dev", "test"):
        rows = raw.get(split)
        out[split] = None if rows is None else [(_as_text(x, separator), _label_name(y, names, task, split)) for x, y in rows]
    out["train"] = [(t, y) for t, y in out["train"] if t.strip()]  # SentEval keeps blank lines as empty texts
    return out


def _label_name(y, names: list[str], task: str, split: str) -> str:
    """The evaluation package's readers give label indices into ``labels``; the fallback reader gives names."""
    if isinstance(y, (int, np.integer)) and not isinstance(y, bool):
        if not 0 <= int(y) < len(names):
            raise DataError(f"{task} {split} set: label index {y} out of range for classes {', '.join(names)}")
        return names[int(y)]
    return str(y)


def _as_text(x, separator: str) -> str:
    if isinstance(x, (tuple, list)):
        return f" {separator} ".join(str(s) for s in x) if len(x) > 1 else str(x[0])
    return str(x)


# ---------------------------------------------------------------------------------------------------------- fallback
def _folder(data_dir) -> Path:
    from decone.paths import data_dir as default_data_dir

    root = default_data_dir(data_dir)
    if root is None:
        raise DataError("no data directory: pass --data-dir or set DECONE_DATA (the layout of shared/data)")
    folder = Path(root) / "classification"
    if not folder.is_dir():
        raise DataError(f"{folder}: not found (expected SentEval's classification folders there)")
    return folder


def _lines(path: Path) -> list[str]:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # SentEval's MR/TREC files are not all UTF-8
    return [line.rstrip("\r") for line in text.split("\n")]


def _load_task(task: str, data_dir) -> dict:
    root = _folder(data_dir)
    if task == "SST-2":
        splits = {}
        for split in ("train", "dev", "test"):
            path = root / "SST" / "binary" / f"sentiment-{split}"
            rows = []
            for number, line in enumerate(_lines(path), start=1):
                if not line.strip():
                    continue
                text, sep, label = line.rpartition("\t")
                if not sep or not label.strip():
                    raise DataError(f"{path}:{number}: expected text<TAB>label")
                if label.strip() not in ("0", "1"):
                    raise DataError(f"{path}:{number}: label {label.strip()!r} is not one of 0, 1 (SST-2)")
                rows.append((text.strip(), label.strip()))
            splits[split] = rows
        return {**splits, "labels": ["0", "1"]}
    if task in _TWO_FILES:
        sub, stem, classes = _TWO_FILES[task]
        rows = [(line.strip(), c) for c in classes for line in _lines(root / sub / f"{stem}.{c}") if line.strip()]
        return {"train": rows, "dev": None, "test": None, "labels": list(classes)}
    if task == "TREC":
        splits = {}
        for split, name in (("train", "train_5500.label"), ("test", "TREC_10.label")):
            path = root / "TREC" / name
            rows = []
            for number, line in enumerate(_lines(path), start=1):
                if not line.strip():
                    continue
                head, _, text = line.strip().partition(" ")
                if ":" not in head or not text:
                    raise DataError(f"{path}:{number}: expected 'LABEL:sub text'")
                label = head.split(":")[0]
                if label not in _TREC_CLASSES:
                    raise DataError(f"{path}:{number}: label {label!r} is not one of {', '.join(_TREC_CLASSES)} (TREC)")
                rows.append((text.strip(), label))
            splits[split] = rows
        return {"train": splits["train"], "dev": None, "test": splits["test"], "labels": list(_TREC_CLASSES)}
    if task == "MRPC":
        splits = {}
        for split in ("train", "test"):
            path = root / "MRPC" / f"msr_paraphrase_{split}.txt"
            rows = []
            for number, line in enumerate(_lines(path), start=1):
                if number == 1 or not line.strip():
                    continue  # header
                cells = line.split("\t")
                if len(cells) != 5 or cells[0].strip().lstrip("\ufeff") not in ("0", "1"):
                    raise DataError(f"{path}:{number}: expected 5 tab-separated fields (Quality, ids, two sentences)")
                rows.append(((cells[3].strip(), cells[4].strip()), cells[0].strip()))
            splits[split] = rows
        return {"train": splits["train"], "dev": None, "test": splits["test"], "labels": ["0", "1"]}
    raise DataError(f"unknown task {task!r}")


def fewshot_splits(task: dict, test_size: int = 0, holdout_fraction: float = 0.1, seed: int = 12345) -> tuple[list, list]:
    """(training pool, test set) for the few-shot protocol, fixed for a task (independent of the run seeds).

    Where the task has no test split (MR, CR, SUBJ, MPQA), a stratified ``holdout_fraction`` of it is held out as the
    test set (one fold of SentEval's 10-fold cross-validation) and the rest is the pool. ``test_size > 0`` evaluates
    on a fixed stratified subset of that many test examples.
    """
    rng = np.random.default_rng(seed)
    pool, test = list(task["train"]), task.get("test")
    if test is None:
        keep, held = [], []
        for label in task["labels"]:
            idx = [i for i, (_, y) in enumerate(pool) if y == label]
            idx = list(rng.permutation(idx))
            cut = int(round(holdout_fraction * len(idx)))
            held += idx[:cut]
            keep += idx[cut:]
        test = [pool[i] for i in sorted(held)]
        pool = [pool[i] for i in sorted(keep)]
    if test_size and test_size < len(test):
        labels = np.array([y for _, y in test])
        chosen = []
        for label in np.unique(labels):
            idx = np.flatnonzero(labels == label)
            share = int(round(test_size * len(idx) / len(test)))
            chosen += list(rng.permutation(idx)[:share])
        test = [test[i] for i in sorted(chosen)]
    return pool, test
