"""Finding evaluation data: a data directory in the layout of ``shared/data``, else a download cache.

Layout (SentEval's, as in ``shared/data``)::

    <dir>/sts/STS12 ... STS16/STS.input.<subset>.txt, STS.gs.<subset>.txt
    <dir>/sts/STSBenchmark/sts-{train,dev,test}.csv
    <dir>/sts/SICK/SICK_test_annotated.txt
    <dir>/wordsim/EN-*.txt
    <dir>/classification/{MR,CR,SUBJ,MPQA,SST/binary,TREC,MRPC}/...

The directory is ``--data-dir``, else ``$DECONE_DATA``, else ``../shared/data`` (:func:`decone.paths.data_dir`). Where a
set is missing there, a cache (``$DECONE_CACHE``, else ``~/.cache/decone/data``) is tried, and where the optional
``datasets`` library is installed and the hub is not switched off (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``), the
STS sets are downloaded into that cache in the same layout. Otherwise a one-line :class:`DataError` says what is
missing and where to put it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

from decone.errors import ConfigError, DataError

HINT = "pass --data-dir or set DECONE_DATA"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """``data_dir``, else ``$DECONE_DATA``, else ``shared/data``; ``None`` where there is none."""
    from decone.paths import data_dir as _data_dir

    return _data_dir(data_dir)


def cache_dir() -> Path:
    """Where downloaded evaluation sets go: ``$DECONE_CACHE``, else ``~/.cache/decone/data``."""
    env = os.environ.get("DECONE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "decone" / "data"


def hub_allowed() -> bool:
    """True where a download may be tried: ``datasets`` is installed and the hub is not switched off."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return False
    import importlib.util
    import sys

    if sys.modules.get("datasets") is not None:
        return True
    try:
        return importlib.util.find_spec("datasets") is not None
    except (ImportError, ValueError):
        return False


def locate(
    what: str,
    data_dir: str | os.PathLike | None,
    required: Sequence[str],
    download: Callable[[Path], None] | None = None,
) -> Path:
    """The root holding every path in ``required`` (relative paths in the shared/data layout).

    An explicit ``data_dir`` is the only place looked at. Otherwise tries ``$DECONE_DATA`` / ``shared/data``, then the
    cache, then ``download(cache_root)`` where the hub may be reachable. Raises a one-line :class:`DataError` naming
    the first missing file otherwise.
    """
    root = resolve_data_dir(data_dir)
    explicit = bool(data_dir)
    # an explicit --data-dir is the only place looked at; otherwise $DECONE_DATA / shared/data, then the cache
    candidates = [root] if explicit else [c for c in (root, cache_dir()) if c is not None]
    for cand in candidates:
        if all((cand / rel).is_file() for rel in required):
            return cand
    download_note = ""
    if explicit:
        pass  # the user pointed at a folder: report what is missing there rather than fetch elsewhere
    elif download is not None and hub_allowed():
        target = cache_dir()
        try:
            download(target)
        except Exception as exc:  # network down, dataset renamed, ...
            download_note = f" (download into {target} failed: {_one_line(exc)})"
        else:
            if all((target / rel).is_file() for rel in required):
                return target
            download_note = f" (download into {target} did not produce it)"
    elif download is not None:
        download_note = " (offline: the `datasets` library is missing or HF_HUB_OFFLINE is set, so nothing was downloaded)"
    if root is None:
        raise DataError(
            f"{what} data not found: no data directory, expected <dir>/{required[0]}; {HINT}{download_note}"
        )
    missing = next(rel for rel in required if not (root / rel).is_file())
    raise DataError(f"{what} data not found: expected {root / missing}; {HINT}{download_note}")


def read_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a text file, without line ends. UTF-8 (a BOM is dropped), else Latin-1 as SentEval reads.

    A NUL byte (a binary file) raises a DataError naming the line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise DataError(f"{path}:{line}: NUL byte in line (is this a binary file?)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.splitlines()


def numbered(path: str | os.PathLike, skip_header: bool = False) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for each line of a file."""
    lines = read_lines(path)
    for i, line in enumerate(lines, start=1):
        if skip_header and i == 1:
            continue
        yield i, line


def resolve_names(given: Sequence[str] | None, default: Sequence[str], lookup: dict[str, str], kind: str,
                  choices: Sequence[str]) -> tuple[str, ...]:
    """Canonical names for a user's spellings (``lookup`` maps lower-case spellings to names), in order, without
    repeats; ``default`` when none are given. An unknown spelling raises a one-line ConfigError naming ``kind``."""
    if not given:
        return tuple(default)
    out = []
    for g in given:
        name = lookup.get(g.strip().lower())
        if name is None:
            raise ConfigError(f"unknown {kind} {g!r}; choose from {', '.join(choices)}")
        out.append(name)
    return tuple(dict.fromkeys(out))


def parse_score(text: str, path, line: int, low: float | None = None, high: float | None = None) -> float:
    """A finite float in [low, high], else a DataError naming ``path:line``."""
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}:{line}: score {text.strip()[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{path}:{line}: score {text.strip()!r} is not finite")
    if (low is not None and value < low) or (high is not None and value > high):
        raise DataError(f"{path}:{line}: score {value:g} is outside [{low:g}, {high:g}]")
    return value


def check_scored(pairs: Sequence, source, what: str = "scored pairs") -> None:
    """A correlation needs at least 2 pairs and 2 different gold scores; else a DataError naming ``source``."""
    if len(pairs) < 2:
        raise DataError(f"{source}: {len(pairs)} {what}; a correlation needs at least 2")
    if len({p[-1] for p in pairs}) < 2:
        raise DataError(f"{source}: all {len(pairs)} gold scores are {pairs[0][-1]:g}; a correlation needs 2 different ones")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
