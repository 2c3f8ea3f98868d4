"""Input data for the diagnostics: sentences, and where there are any, scored sentence pairs (STS-B).

``--data`` may be:

* a folder holding STS Benchmark files ``sts-{train,dev,test}.csv`` (default: ``<data dir>/sts/STSBenchmark``): all
  their sentences, and their pairs;
* an STS-B-format ``.csv`` file (tab-separated: genre, file, year, id, score, sentence1, sentence2);
* any other file: one sentence per line (no pairs, so no alignment).

Errors are one-line :class:`~decone.errors.DataError` messages naming the file and line.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from decone.errors import DataError

#: STS-B pairs with a gold score of at least this are positives for alignment (Gao et al. 2021, section 5, take pairs
#: scored higher than 4; exactly 4.0 counts here).
POSITIVE_SCORE = 4.0
STSB_FILES = ("sts-train.csv", "sts-dev.csv", "sts-test.csv")


@dataclass
class DiagnoseData:
    """Unique sentences (first-occurrence order) and scored pairs (empty for plain text)."""

    sentences: list[str]
    pairs: list[tuple[str, str, float]] = field(default_factory=list)
    source: str = ""

    def positive_pairs(self, threshold: float = POSITIVE_SCORE) -> list[tuple[str, str]]:
        return [(a, b) for a, b, s in self.pairs if s >= threshold]


def default_stsb_dir() -> Path:
    from decone.paths import data_dir

    base = data_dir()
    if base is None:
        raise DataError("no data directory: pass --data, or set DECONE_DATA to a folder holding sts/STSBenchmark")
    return base / "sts" / "STSBenchmark"


def read_stsb(path: str | os.PathLike) -> list[tuple[str, str, float]]:
    """STS Benchmark csv: tab-separated genre, file, year, id, score, sentence1, sentence2 (extra columns ignored).

    Split on tabs only (the sentences contain quotes). -> [(s1, s2, score 0-5)].
    """
    from decone.data import decode_lines

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected an STS-B .csv file")
    pairs = []
    for number, line in enumerate(decode_lines(path, "utf-8"), start=1):
        if not line.strip():
            continue
        row = line.split("\t")
        if len(row) < 7:
            raise DataError(f"{path}:{number}: expected 7 tab-separated fields (genre, file, year, id, score, "
                            f"sentence1, sentence2), got {len(row)}")
        try:
            score = float(row[4])
        except ValueError:
            raise DataError(f"{path}:{number}: score {row[4][:40]!r} is not a number") from None
        if not math.isfinite(score):
            raise DataError(f"{path}:{number}: score {row[4].strip()!r} is not finite")
        if not 0.0 <= score <= 5.0:
            raise DataError(f"{path}:{number}: score {score:g} is outside 0-5")
        pairs.append((row[5].strip(), row[6].strip(), score))
    if not pairs:
        raise DataError(f"{path}: no sentence pairs")
    return pairs


def read_sentences(path: str | os.PathLike) -> list[str]:
    """One sentence per line, blank lines skipped. Uses :func:`decone.data.read_lines` where it exists."""
    path = Path(path)
    try:
        from decone.data import read_lines
    except ImportError:  # pragma: no cover - the shared reader is optional here
        read_lines = None
    if read_lines is not None:
        return [ex[0] for ex in read_lines(path).examples]
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file")
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    lines = [line for line in lines if line]
    if not lines:
        raise DataError(f"{path}: no text")
    return lines


def _unique(texts) -> list[str]:
    return list(dict.fromkeys(t for t in texts if t))


def load_data(path: str | os.PathLike | None = None) -> DiagnoseData:
    """Sentences and pairs from ``path`` (see the module docstring); ``None`` = the STS Benchmark folder."""
    path = Path(path) if path is not None else default_stsb_dir()
    if path.is_dir():
        files = [path / name for name in STSB_FILES if (path / name).exists()]
        if not files:
            raise DataError(f"{path}: folder has no STS Benchmark files ({', '.join(STSB_FILES)})")
        pairs = [p for f in files for p in read_stsb(f)]
        return DiagnoseData(_unique(s for a, b, _ in pairs for s in (a, b)), pairs, str(path))
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.suffix.lower() == ".csv":
        pairs = read_stsb(path)
        return DiagnoseData(_unique(s for a, b, _ in pairs for s in (a, b)), pairs, str(path))
    sentences = _unique(read_sentences(path))
    if len(sentences) < 2:
        raise DataError(f"{path}: need at least 2 distinct sentences, found {len(sentences)}")
    return DiagnoseData(sentences, [], str(path))


def sample(items: list, n: int | None, seed: int) -> list:
    """A seeded random subset of ``n`` items in their original order (all items where n is None or >= len)."""
    if n is None or n >= len(items):
        return list(items)
    idx = np.sort(np.random.default_rng(seed).choice(len(items), size=n, replace=False))
    return [items[i] for i in idx]
