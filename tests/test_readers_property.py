"""Property tests of every data reader: any bytes give parsed records or one DeconeError with a one-line message.

Inputs are arbitrary bytes, and text built from the characters that matter to the formats (tabs, commas, quotes,
braces, line ends, NUL, digits, nan/inf, non-ASCII), written as UTF-8 or Latin-1.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from decone.errors import DeconeError

TOKENS = ["\t", ",", '"', "'", "{", "}", "[", "]", ":", "\n", "\r\n", "\r", "\x00", " ", "0", "1", "2.5", "-3", "nan",
          "inf", "1e400", "text", "label", "sentence1", "sentence2", "score", "anchor", "positive", "null", "true",
          "entailment", "contradiction", "neutral", "ABBR:exp", "NUM:date", "é", "\u2028", "\x85", "\ufeff", "a", "b"]
TEXT = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)
CONTENT = st.one_of(
    st.binary(max_size=200),
    TEXT.map(lambda t: t.encode("utf-8")),
    TEXT.map(lambda t: t.encode("latin-1", errors="replace")),
)
GOOD_CELLS = ["a", "b c", "the cat sat", "dog", "0", "1", "3", "4.5", "2.5", "entailment", "contradiction", "neutral",
              "pos", "neg", "ABBR:exp what is it", "NUM:date when"]
BAD_CELLS = ["", " ", "nan", "-inf", "7", '"q"', "x,y", "caf\u00e9", "\x00"]
CELL = st.sampled_from(GOOD_CELLS * 6 + BAD_CELLS)  # mostly well-formed, so that parsing succeeds often too
NAMES = ["text", "label", "anchor", "positive", "hard_negative", "sentence1", "sentence2", "score", "sentence", "x"]


def lines(sep: str, min_cols: int, max_cols: int, header=None):
    """Text of up to 8 lines of ``sep``-joined cells (after a header row of column names where ``header``)."""
    row = st.lists(CELL, min_size=min_cols, max_size=max_cols).map(sep.join)
    body = st.lists(row, max_size=8)
    if header:
        body = st.tuples(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True).map(sep.join), body).map(
            lambda hb: [hb[0], *hb[1]])
    return body.map(lambda rows: "\n".join(rows) + "\n")


def jsonl():
    import json

    value = st.one_of(CELL, st.integers(-3, 9), st.none(), st.floats(allow_nan=True), st.lists(st.integers(), max_size=2))
    obj = st.dictionaries(st.sampled_from(NAMES), value, max_size=4)
    return st.lists(obj, max_size=8).map(lambda objs: "".join(json.dumps(o) + "\n" for o in objs))


SCORE = st.sampled_from(["0", "1", "1.5", "2", "3.25", "4", "5"] * 4 + ["nan", "inf", "-1", "9", "x", ""])
SENT = st.sampled_from(["a man", "the cat sat", "dog runs", "red car", "a", "b c", "pos", "neg"] * 3 + ["", "q\"uote"])
WORD = st.sampled_from(["cat", "dog", "car", "tree", "man", "Woman"])
NLI = st.sampled_from(["entailment", "contradiction", "neutral", "entailment", "contradiction", "maybe"])


def rows(*cols, sep="\t", header=None):
    """Up to 8 lines with one cell of each column strategy (after ``header`` where given)."""
    return st.lists(st.tuples(*cols).map(sep.join), min_size=1, max_size=8).map(
        lambda r: "".join(line + "\n" for line in ([header] if header else []) + r))


def table(sep):
    """A header of known column names and rows of sentences, as many cells as the header has."""
    head = st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True).map(lambda h: ["text", *h][:4])
    head = st.one_of(head, st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    return head.flatmap(lambda h: st.lists(st.lists(SENT, min_size=len(h), max_size=len(h)), min_size=1, max_size=8).map(
        lambda body: "".join(sep.join(r) + "\n" for r in [h, *body])))


def content(*structured):
    """Arbitrary bytes or text, or the reader's own format with random cells (UTF-8)."""
    return st.one_of(CONTENT, *(s.map(lambda t: t.encode("utf-8")) for s in structured))


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(read, *contents: bytes, names=("f.txt",)):
    """Write ``contents`` to files called ``names`` in a fresh folder and call ``read(folder, *paths)``."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = []
        for name, content in zip(names, contents):
            (folder / name).write_bytes(content)
            paths.append(folder / name)
        try:
            out = read(folder, *paths)
            event("parsed")  # shown by --hypothesis-show-statistics: both outcomes must occur
            return out
        except DeconeError as exc:
            event("DeconeError")
            message = str(exc)
            assert message.strip(), "an empty error message"
            assert len(message.splitlines()) == 1 and "\n" not in message and "\r" not in message, repr(message)
            return None


@SETTINGS
@given(content(lines(" ", 1, 4)))
def test_txt_lines(content):
    from decone.data import read_lines

    data = check(lambda d, p: read_lines(p), content)
    assert data is None or (len(data) >= 1 and all(ex[0] and ex[0] == ex[0].strip() for ex in data.examples))


@SETTINGS
@given(content(table(","), table("\t"), jsonl(), lines(",", 1, 4, header=True)),
       st.sampled_from(["d.csv", "d.tsv", "d.jsonl"]), st.sampled_from(["sentences", "triples", "labelled"]))
def test_tables(content, name, kind):
    from decone.data import read_dataset

    data = check(lambda d, p: read_dataset(p, kind), content, names=(name,))
    if data is not None:
        assert len(data) >= 2 and all(all(cell.strip() for cell in ex) for ex in data.examples)
        assert kind != "labelled" or len(data.labels) == len(data)


@SETTINGS
@given(content(rows(SENT, SENT), rows(SENT, SENT, SENT), lines("\t", 2, 3)))
def test_tab_separated_triples(content):
    from decone.data import read_dataset

    data = check(lambda d, p: read_dataset(p, "triples"), content, names=("pairs.txt",))
    assert data is None or all(len(ex) in (2, 3) for ex in data.examples)


@SETTINGS
@given(st.one_of(st.tuples(CONTENT, CONTENT, CONTENT), st.lists(st.tuples(SENT, SENT, NLI), max_size=10).map(
    lambda r: tuple("".join(x[i] + "\n" for x in r).encode() for i in range(3)))))
def test_snli_folder(files):
    s1, s2, labels = files
    from decone.data import nli_triples

    data = check(lambda d, *p: nli_triples(d, splits=("dev",)), s1, s2, labels, names=("s1.dev", "s2.dev", "labels.dev"))
    assert data is None or all(len(ex) == 3 for ex in data.examples)


@SETTINGS
@given(content(rows(SENT, SENT, SENT, SENT, SCORE, SENT, SENT), rows(SENT, SENT, SCORE, sep=",", header="sentence1,sentence2,score"),
               jsonl()))
def test_scored_pairs(content):
    from decone.data import read_scored_pairs

    pairs = check(lambda d, p: read_scored_pairs(p), content, names=("dev.csv",))
    assert pairs is None or (len(pairs) >= 3 and all(isinstance(s, float) for *_, s in pairs))


@SETTINGS
@given(st.one_of(st.tuples(CONTENT, CONTENT), st.lists(st.tuples(SENT, SENT, SCORE), max_size=8).map(
    lambda r: ("".join(f"{a}\t{b}\n" for a, b, _ in r).encode(), "".join(g + "\n" for *_, g in r).encode()))))
def test_sts_subset(files):
    inputs, gold = files
    from decone.evaluate.sts import read_sts_subset

    pairs = check(lambda d, a, b: read_sts_subset(a, b), inputs, gold, names=("STS.input.x.txt", "STS.gs.x.txt"))
    assert pairs is None or (len(pairs) >= 2 and all(0.0 <= s <= 5.0 for *_, s in pairs))


@SETTINGS
@given(content(rows(SENT, SENT, SENT, SENT, SCORE, SENT, SENT), rows(SENT, SENT, SENT, SCORE, header="id\ta\tb\tscore")),
       st.sampled_from(["stsb", "sick"]))
def test_sts_benchmark_and_sick(content, which):
    from decone.evaluate.sts import read_sick, read_sts_benchmark

    read = read_sts_benchmark if which == "stsb" else read_sick
    pairs = check(lambda d, p: read(p), content)
    low = 0.0 if which == "stsb" else 1.0
    assert pairs is None or (len(pairs) >= 2 and all(low <= s <= 5.0 for *_, s in pairs))


@SETTINGS
@given(content(rows(WORD, WORD, SCORE, sep=" "), lines(" ", 2, 3)))
def test_word_similarity(content):
    from decone.evaluate.words import read_word_pairs

    pairs = check(lambda d, p: read_word_pairs(p), content)
    assert pairs is None or (len(pairs) >= 2 and len({s for *_, s in pairs}) >= 2)


@SETTINGS
@given(content(lines("\t", 1, 5), lines(" ", 1, 3)), st.sampled_from(["class", "sst", "trec", "mrpc"]))
def test_transfer_readers(content, which):
    from decone.evaluate import transfer

    read = {"class": lambda p: transfer.read_class_file(p, 1), "sst": transfer.read_sst, "trec": transfer.read_trec,
            "mrpc": transfer.read_mrpc}[which]
    rows = check(lambda d, p: read(p), content)
    assert rows is None or all(isinstance(y, int) for _, y in rows)


@SETTINGS
@given(content(lines("\t", 1, 2), lines(",", 1, 3, header=True), lines("\t", 1, 3, header=True), jsonl()),
       st.sampled_from(["d.txt", "d.csv", "d.tsv", "d.jsonl"]), st.booleans())
def test_labelled(content, name, require_labels):
    from decone.classify.model import read_labelled

    data = check(lambda d, p: read_labelled(p, require_labels=require_labels), content, names=(name,))
    if data is not None:
        assert data.texts and all(t.strip() for t in data.texts) and len(data.lines) == len(data.texts)
        assert data.labels is None or (len(data.labels) == len(data.texts) and all(data.labels))
        assert not require_labels or data.labels is not None


@SETTINGS
@given(content(lines(" ", 1, 3), rows(SENT, SENT, SENT, SENT, SCORE, SENT, SENT)), st.sampled_from(["d.txt", "d.csv"]))
def test_diagnose_and_whiten_data(content, name):
    from decone.diagnostics.data import load_data

    data = check(lambda d, p: load_data(p), content, names=(name,))
    assert data is None or (len(data.sentences) >= 1 and all(0.0 <= s <= 5.0 for *_, s in data.pairs))


@SETTINGS
@given(content(lines(" ", 1, 4)), st.sampled_from([2, 7, 64]))
def test_large_file_index_agrees_with_the_small_file_reader(content, chunk):
    """LineFile (the byte-offset index for large files) against read_lines: the same texts and blank count, or a
    one-line error from both. Where they differ by design: a line of only non-ASCII spaces (U+2028, U+0085) is blank
    for Python's strip() but kept by the index, as an empty text."""
    import decone.data as data

    eager = check(lambda d, p: data.read_lines(p), content)

    def lazy_read(folder, path):
        old = data.LAZY_BYTES, data._CHUNK
        data.LAZY_BYTES, data._CHUNK = 0, chunk
        try:
            lines = data.read_lines(path)
            return list(lines.examples), lines.skipped_blank
        finally:
            data.LAZY_BYTES, data._CHUNK = old

    lazy = check(lazy_read, content)
    if eager is None:
        return  # the small-file reader refused it: the index may refuse it too, or find it readable line by line
    assert lazy is not None
    texts, blank = lazy
    empty = sum(1 for (t,) in texts if not t)
    assert [ex for ex in texts if ex[0]] == eager.examples and blank + empty == eager.skipped_blank
