"""Data readers for training files.

* ``.txt``: one item per line; blank lines are skipped and counted.
* ``.csv`` / ``.tsv``: a header row naming the columns.
* ``.jsonl``: one JSON object a line.
* a folder in SentEval's NLI layout (``s1.*``, ``s2.*``, ``labels.*``): (premise, entailment, contradiction) triples.

A bad row raises :class:`~decone.errors.DataError` naming the file, the line and the problem.
"""

from __future__ import annotations

import csv
import math
import io
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from decone.errors import DataError

#: Characters kept of a very long line; the tokenizer truncates further to ``max_length`` tokens.
MAX_LINE_CHARS = 20_000

#: Accepted column names, in order of preference, for each role.
COLUMN_ALIASES = {
    "text": ("text", "sentence", "sent", "sent0", "word"),
    "anchor": ("anchor", "sent0", "sentence1", "premise", "s1", "query"),
    "positive": ("positive", "sent1", "sentence2", "entailment", "s2", "pos"),
    "hard_negative": ("hard_negative", "hard_neg", "negative", "contradiction", "neg"),
    "label": ("label", "labels", "class", "y"),
}


@dataclass
class Dataset:
    """Examples read from a file: each a tuple of texts (one per column), with labels for labelled data."""

    examples: list[tuple[str, ...]]
    source: str
    labels: list[str] | None = None
    skipped_blank: int = 0
    label_names: list[str] | None = None  # the task's classes in order, where they are known beyond the labels seen
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.examples)


def decode_lines(path: Path, encoding: str) -> list[str]:
    """The file's lines, decoded one by one so that a bad byte is reported with its line number (``.gz``: the
    decompressed file's lines)."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file")
    raw = path.read_bytes()
    if path.suffix.lower() == ".gz":
        import gzip

        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable gzip file ({exc})") from None
    if not raw:
        raise DataError(f"{path}: file is empty")
    if not raw.strip():
        raise DataError(f"{path}: file has only blank lines")
    lines = []
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        if b"\x00" in chunk:
            raise DataError(f"{path}:{number}: NUL byte in line (is this a binary file?)")
        try:
            lines.append(chunk.decode(encoding).rstrip("\r"))
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path}:{number}: invalid {encoding} bytes at column {exc.start + 1}; "
                "pass --encoding (e.g. --encoding latin-1) if the file is not UTF-8"
            ) from None
        except LookupError:
            raise DataError(f"{path}: unknown encoding {encoding!r}") from None
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _clip(text: str, path: Path, number: int, warnings: list[str]) -> str:
    if len(text) > MAX_LINE_CHARS:
        warnings.append(
            f"{path}:{number}: line of {len(text):,} characters cut to {MAX_LINE_CHARS:,} (the tokenizer keeps max_length tokens)"
        )
        return text[:MAX_LINE_CHARS]
    return text


#: Plain-text files at least this large are read through a byte-offset index (:class:`LineFile`), not into memory.
LAZY_BYTES = 32 * 2**20
_CHUNK = 64 * 2**20


#: The ASCII bytes Python's ``str.strip()`` removes (tab, newlines, vertical tab, form feed, the file/group/record/unit
#: separators, space): a line of only these is blank, as it is for the small-file reader.
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True


def _visible(chunk: np.ndarray, begins: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which lines ``chunk[begins[i]:ends[i]]`` hold a byte that is not ASCII whitespace -> bool (n_lines,).

    A line whose first or last byte is not whitespace is visible; only the others (empty lines, lines that start and
    end with whitespace) are looked at byte by byte, so a file of ordinary lines costs two gathers, not a pass.
    """
    nonempty = ends > begins
    first = chunk[np.minimum(begins, len(chunk) - 1)]
    last = chunk[np.clip(ends - 1, 0, len(chunk) - 1)]
    visible = nonempty & (~_WHITESPACE[first] | ~_WHITESPACE[last])
    unsure = np.flatnonzero(nonempty & ~visible)
    if len(unsure) > 10_000:  # many indented-and-padded lines: one vectorised pass over the chunk
        counts = np.add.reduceat((~_WHITESPACE[chunk]).astype(np.uint8), np.minimum(begins, len(chunk) - 1),
                                 dtype=np.int32)
        return nonempty & (counts > 0)
    for i in unsure:
        visible[i] = bool((~_WHITESPACE[chunk[begins[i]: ends[i]]]).any())
    return visible


class LineFile(Sequence):
    """The non-blank lines of a large text file as a sequence of 1-tuples, read on demand.

    Opening scans the file once in 64 MiB reads (numpy over each buffer; no memory map, so the file's pages are not
    counted in the process's memory), keeping only each non-blank line's byte offset (int64) and length (int32): 12
    bytes a line, about 120 MB for 10M lines, whatever their text. A line is blank when all its bytes are ASCII
    whitespace (what ``str.strip()`` removes). NUL bytes are refused at opening with their line number; a line that does not
    decode is refused when it is read (``os.pread``), with its line number. ``byte_lengths`` stands in for token
    counts in length grouping, which would otherwise tokenise every line before the first step.
    """

    def __init__(self, path: Path, encoding: str = "utf-8"):
        self.path, self.encoding = Path(path), encoding
        self.warnings: list[str] = []
        try:
            "".encode(encoding)
        except LookupError:
            raise DataError(f"{path}: unknown encoding {encoding!r}") from None
        size = self.path.stat().st_size
        if size == 0:
            raise DataError(f"{path}: file is empty")
        self._fd = os.open(self.path, os.O_RDONLY)
        starts, lengths, self.skipped_blank = [], [], 0
        pos = 0
        while pos < size:
            want = _CHUNK
            raw = os.pread(self._fd, want, pos)
            while pos + len(raw) < size and raw.rfind(b"\n") < 0:  # a line longer than a chunk: read more
                want *= 2
                raw = os.pread(self._fd, want, pos)
            if pos + len(raw) < size:  # cut after the chunk's last newline
                raw = raw[: raw.rfind(b"\n") + 1]
            nul = raw.find(b"\x00")  # memchr: far cheaper than a numpy pass over the chunk
            if nul >= 0:
                raise DataError(f"{path}:{self._line_number(pos + nul)}: NUL byte in line (is this a binary file?)")
            chunk = np.frombuffer(raw, dtype=np.uint8)
            ends = np.flatnonzero(chunk == 10)
            if len(ends) == 0 or ends[-1] != len(chunk) - 1:
                ends = np.append(ends, len(chunk))  # the file's last line without a newline
            begins = np.r_[0, ends[:-1] + 1]
            keep = _visible(chunk, begins, ends)
            self.skipped_blank += int(np.count_nonzero(~keep))
            starts.append(begins[keep] + pos)
            lengths.append((ends - begins)[keep].astype(np.int32))
            pos += len(raw)
        self.starts = np.concatenate(starts)
        self.byte_lengths = np.concatenate(lengths)

    def _line_number(self, offset: int) -> int:
        """The 1-based line holding byte ``offset`` (only for error messages: it reads the file up to there)."""
        count, pos = 0, 0
        while pos < offset:
            block = np.frombuffer(os.pread(self._fd, min(_CHUNK, offset - pos), pos), dtype=np.uint8)
            count += int(np.count_nonzero(block == 10))
            pos += len(block)
        return count + 1

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        start = int(self.starts[i])
        raw = os.pread(self._fd, int(self.byte_lengths[i]), start)
        try:
            text = raw.decode(self.encoding).strip()
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.path}:{self._line_number(start)}: invalid {self.encoding} bytes at column "
                            f"{exc.start + 1}; pass --encoding (e.g. --encoding latin-1) if the file is not UTF-8") from None
        return (text[:MAX_LINE_CHARS],)

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)


def read_lines(path: str | Path, encoding: str = "utf-8") -> Dataset:
    """One item per line; blank lines are skipped and counted. -> Dataset of 1-tuples. A plain file of at least
    :data:`LAZY_BYTES` is not read into memory: its examples are a :class:`LineFile`."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() != ".gz" and path.stat().st_size >= LAZY_BYTES:
        lines = LineFile(path, encoding)
        if not len(lines):
            raise DataError(f"{path}: file has only blank lines")
        return Dataset(lines, str(path), skipped_blank=lines.skipped_blank, warnings=lines.warnings)
    warnings: list[str] = []
    examples, blank = [], 0
    for number, line in enumerate(decode_lines(path, encoding), start=1):
        text = line.strip()
        if not text:
            blank += 1
            continue
        examples.append((_clip(text, path, number, warnings),))
    if not examples:
        raise DataError(f"{path}: no text: all {blank} lines are blank")
    return Dataset(examples, str(path), skipped_blank=blank, warnings=warnings)


def _records(path: Path, encoding: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """(column names, [(line number, row dict)]) for .csv/.tsv/.jsonl."""
    suffix = path.suffix.lower()
    lines = decode_lines(path, encoding)
    if suffix == ".jsonl":
        rows, names = [], {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: malformed JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            names.update(dict.fromkeys(obj))
            rows.append((number, obj))
        return list(names), rows
    delimiter = "\t" if suffix == ".tsv" else ","
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter,
                        quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
    try:
        table = list(reader)
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed {suffix[1:].upper()} ({exc})") from None
    if not table:
        raise DataError(f"{path}: file is empty")
    header = [h.strip() for h in table[0]]
    rows = []
    for number, cells in enumerate(table[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise DataError(f"{path}:{number}: {len(cells)} fields, the header has {len(header)}")
        rows.append((number, dict(zip(header, cells))))
    return header, rows


def column_list(names: Sequence[str]) -> str:
    """Column names for a one-line message: printable names as they are, others quoted, long lists cut."""
    shown = [n if n.isprintable() and n.strip() == n and n else repr(n) for n in map(str, names)]
    text = ", ".join(shown[:20]) + (f", ... ({len(shown)} in all)" if len(shown) > 20 else "")
    return text or "none"


def cell_text(value, path: Path, number: int, column: str) -> str:
    """A field as text: strings as they are, numbers and booleans written out, null as empty; a JSON object or
    list raises a DataError naming ``path:number``."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise DataError(f"{path}:{number}: column {column!r} holds a JSON {type(value).__name__}, expected text")
    return str(value)


def resolve_column(path: Path, names: Sequence[str], role: str, explicit: str | None = None, required: bool = True) -> str | None:
    """The column that plays ``role`` (an explicit name, else the first alias present)."""
    if explicit:
        if explicit not in names:
            raise DataError(f"{path}: missing column {explicit!r} (columns: {column_list(names)})")
        return explicit
    for alias in COLUMN_ALIASES[role]:
        if alias in names:
            return alias
    if required:
        raise DataError(
            f"{path}: missing column {role!r} (expected one of {', '.join(COLUMN_ALIASES[role])}; "
            f"columns: {column_list(names)})"
        )
    return None


def read_table(
    path: str | Path,
    roles: Sequence[str],
    optional: Sequence[str] = (),
    columns: dict[str, str] | None = None,
    encoding: str = "utf-8",
) -> tuple[list[tuple[str, ...]], list[str | None], list[str]]:
    """Read named columns from .csv/.tsv/.jsonl.

    Args:
        roles: required roles (e.g. ``["anchor", "positive"]``); each must be non-empty on every row.
        optional: roles that may be absent as a column; if present they must be non-empty too.
        columns: explicit column names per role, overriding the aliases.

    Returns:
        (rows of texts in role order, the optional role's values or None, warnings)
    """
    path = Path(path)
    columns = columns or {}
    names, records = _records(path, encoding)
    wanted = [(r, resolve_column(path, names, r, columns.get(r))) for r in roles]
    wanted += [(r, c) for r in optional if (c := resolve_column(path, names, r, columns.get(r), required=False))]
    rows, warnings = [], []
    for number, record in records:
        values = []
        for role, column in wanted:
            value = record.get(column)
            if value is None:
                said = "missing field" if column not in record else "null in field"
                raise DataError(f"{path}:{number}: {said} {column!r}")
            value = cell_text(value, path, number, column).strip()
            if not value:
                raise DataError(f"{path}:{number}: empty {role} (column {column!r})")
            values.append(_clip(value, path, number, warnings))
        rows.append(tuple(values))
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows, [c for _, c in wanted], warnings


def nli_triples(folder: str | Path, splits: Sequence[str] = ("dev", "test")) -> Dataset:
    """(premise, entailment hypothesis, contradiction hypothesis) triples from SentEval's SNLI layout.

    For each premise with at least one entailment and one contradiction hypothesis, pair them up in order (as
    SimCSE's supervised NLI data does). ``folder`` holds ``s1.<split>``, ``s2.<split>``, ``labels.<split>``.
    """
    folder = Path(folder)
    entail, contra = defaultdict(list), defaultdict(list)
    order: list[str] = []
    found = False
    for split in splits:
        files = [folder / f"{name}.{split}" for name in ("s1", "s2", "labels")]
        if not all(f.exists() for f in files):
            continue
        found = True
        s1, s2, labels = ([line.strip() for line in decode_lines(f, "utf-8")] for f in files)
        if not len(s1) == len(s2) == len(labels):
            raise DataError(f"{files[0]}: {len(s1)} premises but {len(s2)} hypotheses and {len(labels)} labels")
        for number, (p, h, y) in enumerate(zip(s1, s2, labels), start=1):
            if y not in ("entailment", "neutral", "contradiction"):
                raise DataError(f"{files[2]}:{number}: unknown NLI label {y!r}")
            if p not in entail and p not in contra:
                order.append(p)
            if y == "entailment":
                entail[p].append(h)
            elif y == "contradiction":
                contra[p].append(h)
    if not found:
        raise DataError(f"{folder}: no SNLI files (expected s1.dev, s2.dev, labels.dev)")
    triples = [(p, e, c) for p in order for e, c in zip(entail[p], contra[p])]
    if not triples:
        raise DataError(f"{folder}: no premise has both an entailment and a contradiction hypothesis")
    return Dataset(triples, str(folder))


def default_words(n: int = 10_000) -> Dataset:
    """The ``n`` most frequent English words (wordfreq), Mirror-BERT's lexical training recipe (Liu et al. 2021)."""
    from wordfreq import top_n_list

    return Dataset([(w,) for w in top_n_list("en", n)], f"wordfreq:en:top{n}")


def read_dataset(
    path: str | Path | None,
    kind: str,
    columns: dict[str, str] | None = None,
    encoding: str = "utf-8",
) -> Dataset:
    """Read training data for a method's data kind.

    Args:
        path: the file (or an SNLI folder for ``triples``); ``None`` only for ``words`` (the wordfreq default).
        kind: ``sentences`` or ``words`` (one text per example), ``triples`` (anchor, positive[, hard negative]) or
            ``labelled`` (text, label).
    """
    if path is None:
        if kind == "words":
            return default_words()
        raise DataError(f"no --data given: this method needs a file of {kind}")
    path = Path(path)
    inner = Path(path.stem).suffix.lower() if path.suffix.lower() == ".gz" else ""
    if inner in (".csv", ".tsv", ".jsonl"):
        raise DataError(f"{path}: compressed {inner} tables are not read; decompress it (gunzip) first")
    if kind == "triples" and path.is_dir():
        data = nli_triples(path)
    elif path.suffix.lower() in (".csv", ".tsv", ".jsonl"):
        if kind in ("sentences", "words"):
            rows, _, warnings = read_table(path, ["text"], columns=columns, encoding=encoding)
            data = Dataset(rows, str(path), warnings=warnings)
        elif kind == "triples":
            rows, _, warnings = read_table(path, ["anchor", "positive"], ["hard_negative"], columns, encoding)
            if len({len(r) for r in rows}) != 1:
                raise DataError(f"{path}: some rows have a hard negative and some do not")
            data = Dataset(rows, str(path), warnings=warnings)
        elif kind == "labelled":
            rows, _, warnings = read_table(path, ["text", "label"], columns=columns, encoding=encoding)
            data = Dataset([r[:1] for r in rows], str(path), labels=[r[1] for r in rows], warnings=warnings)
        else:
            raise DataError(f"unknown data kind {kind!r}")
    elif kind in ("sentences", "words"):
        data = read_lines(path, encoding)
    elif kind == "triples":
        data = _read_tab_rows(path, encoding)
    elif kind == "labelled":  # SentEval-style `text<TAB>label` lines
        labelled = read_labelled(path, encoding, require_labels=True)
        data = Dataset([(t,) for t in labelled.texts], labelled.source, labels=labelled.labels)
    else:
        raise DataError(f"{path}: {kind} data must be .csv, .tsv or .jsonl with named columns")
    check_contrastive(data)
    return data


def _read_tab_rows(path: Path, encoding: str) -> Dataset:
    """A headerless .txt of tab-separated (anchor, positive[, hard negative]) rows."""
    rows, width = [], None
    for number, line in enumerate(decode_lines(path, encoding), start=1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) not in (2, 3) or (width is not None and len(cells) != width):
            raise DataError(f"{path}:{number}: expected {width or '2 or 3'} tab-separated fields, got {len(cells)}")
        width = len(cells)
        for name, cell in zip(("anchor", "positive", "hard negative"), cells):
            if not cell:
                raise DataError(f"{path}:{number}: empty {name}")
        rows.append(tuple(cells))
    if not rows:
        raise DataError(f"{path}: no rows")
    return Dataset(rows, str(path))


def check_contrastive(data: Dataset) -> None:
    """A contrastive batch needs two different examples; identical examples make every negative a false one."""
    if len(data) < 2:
        raise DataError(f"{data.source}: only {len(data)} example; contrastive learning needs at least 2 (in-batch negatives)")
    examples = data.examples
    if isinstance(examples, LineFile):  # a large file: judged on a seeded sample, not by reading every line
        pick = np.random.default_rng(0).choice(len(examples), size=min(len(examples), 10_000), replace=False)
        examples = [examples[int(i)] for i in pick]
    distinct = len(set(examples))
    seen = f"{len(data)}" if len(examples) == len(data) else f"{len(examples):,} sampled"
    if distinct == 1:
        data.warnings.append(f"{data.source}: all {seen} examples are identical: every in-batch negative is a false negative")
    elif distinct < 0.5 * len(examples):
        data.warnings.append(f"{data.source}: only {distinct} distinct examples of {seen}: many in-batch negatives are false negatives")


def read_scored_pairs(path: str | Path, encoding: str = "utf-8") -> list[tuple[str, str, float]]:
    """(sentence1, sentence2, score) rows for dev evaluation.

    Accepts STS Benchmark files (``sts-dev.csv``: tab-separated genre, file, year, id, score, s1, s2, no header) and
    .csv/.tsv/.jsonl files with ``sentence1``, ``sentence2`` and ``score`` columns.
    """
    path = Path(path)
    lines = decode_lines(path, encoding)
    first = lines[0].split("\t") if lines else []
    if len(first) >= 7 and _is_float(first[4]):  # STS Benchmark layout
        pairs = []
        for number, line in enumerate(lines, start=1):
            cells = line.split("\t")
            if not line.strip():
                continue
            if len(cells) < 7 or not _is_float(cells[4]):
                raise DataError(f"{path}:{number}: expected 7 tab-separated fields with a score in field 5 (a finite number)")
            pairs.append((cells[5].strip(), cells[6].strip(), float(cells[4])))
    else:
        names, records = _records(path, encoding)
        s1 = resolve_column(path, names, "anchor")
        s2 = resolve_column(path, names, "positive")
        score = next((c for c in ("score", "label", "similarity", "gold") if c in names), None)
        if score is None:
            raise DataError(f"{path}: missing column 'score' (columns: {column_list(names)})")
        pairs = []
        for number, record in records:
            value = record.get(score)
            if isinstance(value, bool) or not _is_float(value):
                shown = repr(value) if not isinstance(value, str) or len(value) <= 40 else repr(value[:40] + "...")
                raise DataError(f"{path}:{number}: score {shown} is not a finite number")
            texts = [cell_text(record.get(c), path, number, c).strip() for c in (s1, s2)]
            for column, text in zip((s1, s2), texts):
                if not text:
                    raise DataError(f"{path}:{number}: empty sentence (column {column!r})")
            pairs.append((texts[0], texts[1], float(value)))
    if len(pairs) < 3:
        raise DataError(f"{path}: {len(pairs)} scored pairs; a Spearman correlation needs at least 3")
    return pairs


def _is_float(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def join_pair(first: str, second: str, separator: str = "[SEP]") -> str:
    """A sentence pair as one text for a single-text classifier."""
    return f"{first} {separator} {second}"


# ------------------------------------------------------------------------------------ labelled texts (classifiers)
@dataclass
class LabelledTexts:
    """Texts read from a file with their (optional) gold labels and the line each came from."""

    texts: list[str]
    labels: list[str] | None
    lines: list[int]
    source: str


def read_labelled(path: str | os.PathLike, encoding: str = "utf-8", text_column: str | None = None,
                  label_column: str | None = None, separator: str = "[SEP]", require_labels: bool = False) -> LabelledTexts:
    """Read texts and optional gold labels.

    * ``.csv`` / ``.tsv`` / ``.jsonl`` with a header: a text column (``text``, ``sentence``, ...) or a sentence-pair
      (``sentence1``/``sentence2``, ...; joined with ``separator``), and optionally a label column (``label``, ...).
    * any other file: ``text<TAB>label`` lines when every non-blank line has a tab (SentEval's SST layout, the label
      after the last tab), else one text per line without labels. Blank lines are skipped.

    Raises:
        DataError: missing file or column, an empty text or label (naming file:line), or no labels where required.
    """
    path = Path(path)
    texts: list[str] = []
    labels: list[str] = []
    lines: list[int] = []
    has_labels = False
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl"):
        names, records = _records(path, encoding)
        label_col = resolve_column(path, names, "label", label_column, required=bool(label_column) or require_labels)
        text_col = resolve_column(path, names, "text", text_column, required=False)
        pair = None
        if text_col is None:
            first, second = (resolve_column(path, names, r, required=False) for r in ("anchor", "positive"))
            if first is None or second is None or first == label_col or second == label_col:
                raise DataError(f"{path}: missing column 'text' (expected one of text, sentence, sent, or a "
                                f"sentence1/sentence2 pair; columns: {column_list(names)})")
            pair = (first, second)
        has_labels = label_col is not None
        for number, record in records:
            if pair is None:
                text = cell_text(record.get(text_col), path, number, text_col).strip()
            else:
                a, b = (cell_text(record.get(c), path, number, c).strip() for c in pair)
                text = join_pair(a, b, separator) if a and b else ""
            if not text:
                raise DataError(f"{path}:{number}: empty text")
            if has_labels:
                label = cell_text(record.get(label_col), path, number, label_col).strip()
                if not label:
                    raise DataError(f"{path}:{number}: empty label (column {label_col!r})")
                labels.append(label)
            texts.append(text)
            lines.append(number)
    else:
        raw = decode_lines(path, encoding)
        numbered = [(n, line) for n, line in enumerate(raw, start=1) if line.strip()]
        has_labels = bool(numbered) and all("\t" in line for _, line in numbered)
        for number, line in numbered:
            if has_labels:
                text, _, label = line.rpartition("\t")
                text, label = text.strip(), label.strip()
                if not label:
                    raise DataError(f"{path}:{number}: empty label after the tab")
                if not text:
                    raise DataError(f"{path}:{number}: empty text before the tab")
                labels.append(label)
            else:
                text = line.strip()
            texts.append(text)
            lines.append(number)
    if not texts:
        raise DataError(f"{path}: no text")
    if require_labels and not has_labels:
        raise DataError(f"{path}: no labels (expected a label column, or text<TAB>label lines)")
    return LabelledTexts(texts, labels if has_labels else None, lines, str(path))
