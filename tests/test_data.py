"""Each reader on good and bad input: errors name the file and the line."""

import json

import pytest

from decone.data import nli_triples, read_dataset, read_lines, read_scored_pairs
from decone.errors import DataError


def test_txt_skips_and_counts_blank_lines(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("one\n\n  \ntwo\nthree\n")
    data = read_lines(f)
    assert data.examples == [("one",), ("two",), ("three",)] and data.skipped_blank == 2


@pytest.mark.parametrize("content,match", [
    (b"", "file is empty"),
    (b"\n\n  \n", "file has only blank lines"),
    (b"ok\nbad \xff\xfe line\n", r"a.txt:2: invalid utf-8 bytes.*--encoding"),
    (b"ok\nnul\x00here\n", r"a.txt:2: NUL byte"),
])
def test_txt_bad_input(tmp_path, content, match):
    f = tmp_path / "a.txt"
    f.write_bytes(content)
    with pytest.raises(DataError, match=match):
        read_lines(f)


def test_latin1_with_encoding_flag(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes("café au lait\nnaïve\n".encode("latin-1"))
    with pytest.raises(DataError, match=":1: invalid utf-8"):
        read_lines(f)
    assert read_lines(f, encoding="latin-1").examples[0] == ("café au lait",)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_lines(tmp_path / "nope.txt")


def test_long_line_is_cut_with_a_warning(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("short\n" + "x" * 1_000_000 + "\n")
    data = read_lines(f)
    assert len(data.examples[1][0]) == 20_000 and "a.txt:2" in data.warnings[0]


def test_single_sentence_and_identical_lines(tmp_path):
    f = tmp_path / "one.txt"
    f.write_text("only one\n")
    with pytest.raises(DataError, match="contrastive learning needs at least 2"):
        read_dataset(f, "sentences")
    f.write_text("same\nsame\nsame\n")
    assert "all 3 examples are identical" in read_dataset(f, "sentences").warnings[0]


def test_csv_tsv_jsonl_columns(tmp_path):
    (tmp_path / "a.csv").write_text('text,other\n"hello, world",1\nsecond,2\n')
    assert read_dataset(tmp_path / "a.csv", "sentences").examples == [("hello, world",), ("second",)]
    (tmp_path / "a.tsv").write_text("sent0\tsent1\thard_neg\na\tb\tc\nd\te\tf\n")
    assert read_dataset(tmp_path / "a.tsv", "triples").examples == [("a", "b", "c"), ("d", "e", "f")]
    (tmp_path / "a.jsonl").write_text(json.dumps({"anchor": "a", "positive": "b"}) + "\n" + json.dumps({"anchor": "c", "positive": "d"}) + "\n")
    assert read_dataset(tmp_path / "a.jsonl", "triples").examples == [("a", "b"), ("c", "d")]


@pytest.mark.parametrize("name,content,match", [
    ("a.csv", "sentence1,other\nx,1\n", r"a.csv: missing column 'positive'"),
    ("a.jsonl", '{"anchor": "a", "positive": "b"}\n{"anchor": "a", "positive": \n', r"a.jsonl:2: malformed JSON"),
    ("a.jsonl", '{"anchor": "a", "positive": "b"}\n{"anchor": "c", "positive": ""}\n', r"a.jsonl:2: empty positive"),
    ("a.jsonl", '{"anchor": "a", "positive": "b"}\n{"anchor": "c"}\n', r"a.jsonl:2: missing field 'positive'"),
    ("a.jsonl", '{"anchor": "a", "positive": "b"}\n{"anchor": "c", "positive": null}\n', r"a.jsonl:2: null in field 'positive'"),
    ("a.tsv", "anchor\tpositive\na\tb\tc\n", r"a.tsv:2: 3 fields, the header has 2"),
])
def test_table_errors_name_file_and_line(tmp_path, name, content, match):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=match):
        read_dataset(tmp_path / name, "triples")


def test_tab_separated_txt_triples(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("a\tb\tc\nd\te\tf\n")
    assert read_dataset(f, "triples").examples == [("a", "b", "c"), ("d", "e", "f")]
    f.write_text("a\tb\tc\nd\t\tf\n")
    with pytest.raises(DataError, match=r"t.txt:2: empty positive"):
        read_dataset(f, "triples")


def test_nli_triples(tmp_path):
    (tmp_path / "s1.dev").write_text("p1\np1\np1\np2\np3\np3\n")
    (tmp_path / "s2.dev").write_text("e1\nc1\nn1\ne2\nc3\ne3\n")
    (tmp_path / "labels.dev").write_text("entailment\ncontradiction\nneutral\nentailment\ncontradiction\nentailment\n")
    assert nli_triples(tmp_path).examples == [("p1", "e1", "c1"), ("p3", "e3", "c3")]
    (tmp_path / "labels.dev").write_text("entailment\ncontradiction\nneutral\nentailment\nmaybe\nentailment\n")
    with pytest.raises(DataError, match=r"labels.dev:5: unknown NLI label 'maybe'"):
        nli_triples(tmp_path)


def test_default_words():
    data = read_dataset(None, "words")
    assert len(data) == 10_000 and data.examples[0] == ("the",)


def test_scored_pairs(tmp_path):
    f = tmp_path / "sts-dev.csv"
    f.write_text("g\tf\t2012\t1\t5.0\ta man\ta person\ng\tf\t2012\t2\t0.5\tx\ty\ng\tf\t2012\t3\t2.5\tp\tq\n")
    assert read_scored_pairs(f)[0] == ("a man", "a person", 5.0)
    f.write_text("g\tf\t2012\t1\t5.0\ta man\ta person\ng\tf\t2012\t2\tNaN\tx\ty\n")
    with pytest.raises(DataError, match=r"sts-dev.csv:2: expected 7 tab-separated fields with a score"):
        read_scored_pairs(f)


# ------------------------------------------------------------------------ large files: LineFile (byte-offset index)
def _lazy(monkeypatch, chunk: int | None = None):
    import decone.data as data

    monkeypatch.setattr(data, "LAZY_BYTES", 0)  # every plain file through the index
    if chunk:
        monkeypatch.setattr(data, "_CHUNK", chunk)  # lines across chunk boundaries, lines longer than a chunk


@pytest.mark.parametrize("chunk", [3, 16, None])
def test_large_file_reads_like_the_small_file_path(tmp_path, monkeypatch, chunk):
    from decone.data import LineFile

    text = "first line\n\n   \t\r\nsecond  \r\nthird\n\u00e9t\u00e9 " + "x" * 40 + "\n\n\nlast, no newline"
    path = tmp_path / "d.txt"
    path.write_text(text, encoding="utf-8")
    eager = read_lines(path)
    _lazy(monkeypatch, chunk)
    lazy = read_lines(path)
    assert isinstance(lazy.examples, LineFile) and not isinstance(eager.examples, LineFile)
    assert list(lazy.examples) == eager.examples and lazy.skipped_blank == eager.skipped_blank == 4
    assert lazy.examples[1:3] == eager.examples[1:3]
    assert list(lazy.examples.byte_lengths) == [len(line.encode()) for line in text.split("\n") if line.strip()]

def test_large_file_blank_lines_by_both_paths_of_the_scan(tmp_path, monkeypatch):
    """Lines that start and end with whitespace are checked byte by byte, a few in a loop, many (> 10,000 in a chunk)
    in one vectorised pass; both agree with the small-file reader, control bytes (kept by strip()) included."""
    import decone.data as data

    rows = []
    for i in range(12_000):
        rows.append(" \t " if i % 3 == 0 else (f"  word {i}\r" if i % 3 == 1 else "\x1c\x1f \x01 "))
    for name, text in {"few.txt": "\n".join(rows[:30]) + "\n", "many.txt": "\n".join(rows) + "\n"}.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        eager = read_lines(path)
        _lazy(monkeypatch)
        lazy = read_lines(path)
        monkeypatch.setattr(data, "LAZY_BYTES", 32 * 2**20)
        assert isinstance(lazy.examples, data.LineFile)
        assert list(lazy.examples) == eager.examples and lazy.skipped_blank == eager.skipped_blank
        assert eager.skipped_blank == len(rows[: 30 if name == "few.txt" else None: 3])



def test_large_file_bad_bytes_name_their_line(tmp_path, monkeypatch):
    _lazy(monkeypatch, 4)
    (tmp_path / "nul.txt").write_bytes(b"one\ntwo\nth\x00ree\n")
    with pytest.raises(DataError, match=r"nul.txt:3: NUL byte"):
        read_lines(tmp_path / "nul.txt")
    (tmp_path / "bad.txt").write_bytes(b"fine\nalso fine\nbad \xff here\n")
    data = read_lines(tmp_path / "bad.txt")
    assert data.examples[0] == ("fine",)
    with pytest.raises(DataError, match=r"bad.txt:3: invalid utf-8 bytes at column 5"):
        data.examples[2]
    (tmp_path / "blank.txt").write_bytes(b"\n  \n\t\n")
    with pytest.raises(DataError, match="only blank lines"):
        read_lines(tmp_path / "blank.txt")


def test_gzip_text_is_read(tmp_path):
    import gzip

    (tmp_path / "d.txt.gz").write_bytes(gzip.compress(b"one sentence\n\ntwo sentences\n"))
    assert read_dataset(tmp_path / "d.txt.gz", "sentences").examples == [("one sentence",), ("two sentences",)]
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(b"text\na\nb\n"))
    with pytest.raises(DataError, match="compressed .csv tables are not read"):
        read_dataset(tmp_path / "d.csv.gz", "sentences")
    (tmp_path / "bad.txt.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="bad.txt.gz: not a readable gzip file"):
        read_lines(tmp_path / "bad.txt.gz")


def test_training_on_a_large_file_groups_by_tokens_window_by_window(tmp_path, monkeypatch, tiny_model_dir):
    """The trainer takes a LineFile: its batches come window by window (WindowBatches), grouped by token counts of
    each window when it is reached (no tokenising of every line before step 1); the order is a pure function of the
    seed (so resume and DDP shards see the same batches), and a run trains and saves."""
    import random

    from decone.data import LineFile
    from decone.train import TrainConfig, Trainer

    rng = random.Random(0)
    words = "the a cat dog sat ran on under big small red mat house tree car road".split()
    (tmp_path / "big.txt").write_text("\n".join(" ".join(rng.choices(words, k=rng.randint(2, 12))) for _ in range(300)))
    _lazy(monkeypatch)
    config = dict(method="simcse", model=str(tiny_model_dir), data=str(tmp_path / "big.txt"), max_steps=3,
                  batch_size=16, max_length=16, bf16=False, pooling="mean")
    first = Trainer(TrainConfig(output=str(tmp_path / "a"), **config))
    first.setup()
    import numpy as np

    from decone.train.batches import WindowBatches, token_lengths

    assert isinstance(first.data.examples, LineFile)
    batches = first.epoch_batches(0)
    assert isinstance(batches, WindowBatches) and batches._cache is None  # nothing tokenised before the first step
    batches = list(batches)
    again = Trainer(TrainConfig(output=str(tmp_path / "b"), **config))
    again.setup()
    assert len(batches) == len(again.epoch_batches(0)) == 19  # 18 x 16 + 12
    assert all((x == y).all() for x, y in zip(batches, again.epoch_batches(0)))
    tokens = np.asarray(token_lengths(first.encoder, [first.data.examples[i] for i in range(300)], 16))
    spread = [int(tokens[b].max() - tokens[b].min()) for b in batches]
    assert sum(spread) / len(spread) < 0.5 * (int(tokens.max()) - int(tokens.min()))  # grouped by tokens
    summary = first.run()
    assert summary["steps"] == 3 and (tmp_path / "a" / "model.safetensors").exists()
