"""Shared pieces of the per-command bad-input catalogues (tests/test_catalogue_*.py).

A case is ``Case(id, argv, files, fragments)``: ``files`` are written into the case's own empty working folder
(``{data}/...`` keys go into a fresh copy of the tiny data directory), ``argv`` may name ``{model}`` (a tiny random
BERT), ``{clf}`` (a classifier folder built on it), ``{work}`` (shared read-only inputs) and ``{data}``. Each case
must exit 2 with exactly one ``error:`` line holding every fragment, no traceback, and leave its working folder
exactly as it was (no partial output).

With ``DECONE_CATALOGUE_DUMP=<file>`` every case appends ``{command, id, input, error}`` as JSON to that file;
``docs/catalogue.py`` turns it into the table of docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests._cli import CliRunner, assert_clean_error, snapshot, write

VOCAB = ("the a man woman child dog cat plays runs sat on mat red blue big small old new good bad movie film great "
         "sad happy day night city car road house tree water music song book school").split()
BINARY = bytes(range(256)) * 4  # NUL bytes and every other byte value: "a binary file"
SENTS = "".join(f"sentence number {i} about the {VOCAB[i % len(VOCAB)]}\n" for i in range(24))


@dataclass
class Case:
    id: str
    argv: list[str]
    files: dict = field(default_factory=dict)
    fragments: tuple = ()
    input: str = ""  # what is wrong, for the docs table (default: the id)
    xfail: str | None = None  # "lead: <the fix>" where the bug is in a file this suite does not own


def params(cases: list[Case]) -> list:
    marks = lambda c: [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
    return [pytest.param(c, id=c.id, marks=marks(c)) for c in cases]


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(3, 7)))


def make_data_dir(root: Path, seed: int = 0) -> Path:
    """A tiny but complete data directory in the layout of shared/data (STS, word similarity, transfer tasks)."""
    from decone.evaluate.sts import STS_YEARS
    from decone.evaluate.words import WORD_SETS

    rng = random.Random(seed)
    for year, subsets in STS_YEARS.items():
        for s in subsets:
            write(root / "sts" / year / f"STS.input.{s}.txt", "".join(f"{_sentence(rng)}\t{_sentence(rng)}\n" for _ in range(4)))
            write(root / "sts" / year / f"STS.gs.{s}.txt", "".join(f"{rng.uniform(0, 5):.2f}\n" for _ in range(4)))
    for split in ("train", "dev", "test"):
        write(root / "sts" / "STSBenchmark" / f"sts-{split}.csv", "".join(
            f"main-captions\tMSRvid\t2012test\t{i:04d}\t{rng.uniform(0, 5):.3f}\t{_sentence(rng)}\t{_sentence(rng)}\n"
            for i in range(12)))
    write(root / "sts" / "SICK" / "SICK_test_annotated.txt",
          "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
          + "".join(f"{i}\t{_sentence(rng)}\t{_sentence(rng)}\t{rng.uniform(1, 5):.1f}\tNEUTRAL\n" for i in range(10)))
    for name in WORD_SETS.values():
        write(root / "wordsim" / name, "".join(f"{rng.choice(VOCAB)}\t{rng.choice(VOCAB)}\t{rng.uniform(0, 10):.2f}\n"
                                               for _ in range(6)))
    c = root / "classification"
    for task, (neg, pos) in {"MR": ("rt-polarity.neg", "rt-polarity.pos"), "CR": ("custrev.neg", "custrev.pos"),
                             "SUBJ": ("subj.subjective", "subj.objective"), "MPQA": ("mpqa.neg", "mpqa.pos")}.items():
        write(c / task / neg, "".join(f"bad {_sentence(rng)}\n" for _ in range(12)))
        write(c / task / pos, "".join(f"good {_sentence(rng)}\n" for _ in range(12)))
    for split, n in (("train", 24), ("dev", 8), ("test", 8)):
        write(c / "SST" / "binary" / f"sentiment-{split}",
              "".join(f"{'good' if i % 2 else 'bad'} {_sentence(rng)}\t{i % 2}\n" for i in range(n)))
    labels = ("ABBR:exp", "DESC:def", "ENTY:animal", "HUM:ind", "LOC:city", "NUM:date")
    write(c / "TREC" / "train_5500.label", "".join(f"{labels[i % 6]} {_sentence(rng)} ?\n" for i in range(60)))
    write(c / "TREC" / "TREC_10.label", "".join(f"{labels[i % 6]} {_sentence(rng)} ?\n" for i in range(12)))
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    for split, n in (("train", 24), ("test", 8)):
        write(c / "MRPC" / f"msr_paraphrase_{split}.txt",
              header + "".join(f"{i % 2}\t{100 + i}\t{200 + i}\t{_sentence(rng)}\t{_sentence(rng)}\n" for i in range(n)))
    return root


def make_classifier(folder: Path, model_dir: Path, labels=("neg", "pos")) -> Path:
    """A classifier folder as `decone train scl` writes it: the encoder's files plus a random linear head."""
    import torch
    from safetensors.torch import save_file

    shutil.copytree(model_dir, folder)
    hidden = json.loads((model_dir / "config.json").read_text())["hidden_size"]
    torch.manual_seed(0)
    save_file({"weight": torch.randn(len(labels), hidden), "bias": torch.zeros(len(labels))}, folder / "classifier.safetensors")
    (folder / "classifier.json").write_text(json.dumps({"labels": list(labels)}))
    return folder


class Catalogue:
    """The fork-server runner plus the shared inputs of the catalogue cases."""

    def __init__(self, root: Path, model_dir: Path):
        self.root = root
        self.model = model_dir
        self.work = root / "work"
        self.data = make_data_dir(root / "data")
        self.clf = make_classifier(root / "clf", model_dir)
        write(self.work / "good.txt", SENTS)
        write(self.work / "stsb.csv", (self.data / "sts" / "STSBenchmark" / "sts-dev.csv").read_text())
        self.run = CliRunner(warm_model=model_dir)

    def case(self, command: str, case: Case, cwd: Path) -> str:
        """Run one case in the empty folder ``cwd``; assert the clean error and an untouched folder."""
        subst = {"{model}": str(self.model), "{clf}": str(self.clf), "{work}": str(self.work), "{data}": str(cwd / "data")}
        if any("{data}" in a for a in case.argv) or any(k.startswith("{data}") for k in case.files):
            shutil.copytree(self.data, cwd / "data")
        for name, content in case.files.items():
            write(cwd / name.replace("{data}/", "data/"), content)
        if any("afile" in a for a in case.argv):
            write(cwd / "afile", "a file, not a folder\n")
        argv = []
        for a in case.argv:
            for k, v in subst.items():
                a = a.replace(k, v)
            argv.append(a)
        before = snapshot(cwd)
        proc = self.run(*argv, cwd=cwd, env={"DECONE_CACHE": str(self.root / "cache"), "DECONE_DATA": str(cwd / "no-data")})
        line = assert_clean_error(proc, *case.fragments)
        assert snapshot(cwd) == before, "the failed command left output behind"
        assert not (self.root / "cache").exists()
        dump = os.environ.get("DECONE_CATALOGUE_DUMP")
        if dump:
            shown = line.replace(str(cwd) + "/", "").replace(str(self.root) + "/", "").replace(str(self.model), "MODEL")
            with open(dump, "a", encoding="utf-8") as f:
                f.write(json.dumps({"command": command, "id": case.id, "input": case.input or case.id,
                                    "error": shown}) + "\n")
        return line

    def close(self) -> None:
        self.run.close()


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory, tiny_model_dir):
    cat = Catalogue(tmp_path_factory.mktemp("catalogue"), tiny_model_dir)
    yield cat
    cat.close()
