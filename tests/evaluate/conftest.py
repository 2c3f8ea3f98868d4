"""Synthetic evaluation data in the layout of shared/data (tiny, written in milliseconds) and stub encoders."""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import numpy as np
import pytest

from decone.evaluate.sts import STS_YEARS
from decone.evaluate.words import WORD_SETS

VOCAB = ("the a man woman child dog cat plays runs sat on mat red blue big small old new good bad movie film great "
         "sad happy day night city car road house tree water music song book school").split()


def _sentence(rng: random.Random, n: int | None = None) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n or rng.randint(3, 8)))


def write_sts(root: Path, rng: random.Random, pairs_per_subset: int = 6) -> None:
    for year, subsets in STS_YEARS.items():
        folder = root / "sts" / year
        folder.mkdir(parents=True, exist_ok=True)
        for s in subsets:
            inputs, golds = [], []
            for i in range(pairs_per_subset):
                inputs.append(f"{_sentence(rng)}\t{_sentence(rng)}")
                golds.append("" if i == 2 else f"{rng.uniform(0, 5):.3f}")  # one pair without gold per subset
            (folder / f"STS.input.{s}.txt").write_text("\n".join(inputs) + "\n")
            (folder / f"STS.gs.{s}.txt").write_text("\n".join(golds) + "\n")
    stsb = root / "sts" / "STSBenchmark"
    stsb.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 12), ("dev", 10), ("test", 20)):
        rows = [f"main-captions\tMSRvid\t2012test\t{i:04d}\t{rng.uniform(0, 5):.3f}\t{_sentence(rng)}\t{_sentence(rng)}"
                for i in range(n)]
        (stsb / f"sts-{split}.csv").write_text("\n".join(rows) + "\n")
    sick = root / "sts" / "SICK"
    sick.mkdir(parents=True, exist_ok=True)
    rows = ["pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment"]
    rows += [f"{i}\t{_sentence(rng)}\t{_sentence(rng)}\t{rng.uniform(1, 5):.1f}\tNEUTRAL" for i in range(20)]
    (sick / "SICK_test_annotated.txt").write_text("\n".join(rows) + "\n")


def write_words(root: Path, rng: random.Random, n: int = 8) -> None:
    folder = root / "wordsim"
    folder.mkdir(parents=True, exist_ok=True)
    for fname in WORD_SETS.values():
        rows = [f"{rng.choice(VOCAB)}\t{rng.choice(VOCAB)}\t{rng.uniform(0, 10):.2f}" for _ in range(n)]
        (folder / fname).write_text("\n".join(rows) + "\n")


def write_classification(root: Path, rng: random.Random, per_class: int = 15) -> None:
    c = root / "classification"
    # one-file-per-class tasks: class 1 sentences start with "good", class 0 with "bad" (separable)
    for task, (neg, pos) in {"MR": ("rt-polarity.neg", "rt-polarity.pos"), "CR": ("custrev.neg", "custrev.pos"),
                             "SUBJ": ("subj.subjective", "subj.objective"), "MPQA": ("mpqa.neg", "mpqa.pos")}.items():
        (c / task).mkdir(parents=True, exist_ok=True)
        (c / task / neg).write_text("".join(f"bad {_sentence(rng)} \n" for _ in range(per_class)))
        (c / task / pos).write_text("".join(f"good {_sentence(rng)} \n" for _ in range(per_class)))
    sst = c / "SST" / "binary"
    sst.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 40), ("dev", 12), ("test", 12)):
        rows = []
        for i in range(n):
            y = i % 2
            rows.append(f"{'good' if y else 'bad'} {_sentence(rng)} \t{y}")
        (sst / f"sentiment-{split}").write_text("\n".join(rows) + "\n")
    trec = c / "TREC"
    trec.mkdir(parents=True, exist_ok=True)
    labels = ("ABBR:exp", "DESC:def", "ENTY:animal", "HUM:ind", "LOC:city", "NUM:date")
    (trec / "train_5500.label").write_text("".join(f"{labels[i % 6]} {_sentence(rng)} ?\n" for i in range(60)))
    (trec / "TREC_10.label").write_text("".join(f"{labels[i % 6]} {_sentence(rng)} ?\n" for i in range(18)))
    mrpc = c / "MRPC"
    mrpc.mkdir(parents=True, exist_ok=True)
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    for split, n in (("train", 40), ("test", 12)):
        rows = [header]
        for i in range(n):
            s = _sentence(rng)
            rows.append(f"{i % 2}\t{100 + i}\t{200 + i}\t{s}\t{s if i % 2 else _sentence(rng)}")
        (mrpc / f"msr_paraphrase_{split}.txt").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="session")
def mini_data(tmp_path_factory) -> Path:
    """A complete tiny data directory (sts, wordsim, classification) in the shared/data layout."""
    root = tmp_path_factory.mktemp("mini-data")
    rng = random.Random(0)
    write_sts(root, rng)
    write_words(root, rng)
    write_classification(root, rng)
    return root


class HashEncoder:
    """A stub encoder: a fixed random vector per text (seeded by its CRC32); records every call."""

    def __init__(self, dim: int = 16):
        self.dim = dim
        self.calls: list[list[str]] = []

    def vector(self, text: str) -> np.ndarray:
        return np.random.default_rng(zlib.crc32(text.encode())).standard_normal(self.dim).astype(np.float32)

    def encode(self, sentences, batch_size: int = 32):
        sentences = list(sentences)
        self.calls.append(sentences)
        return np.stack([self.vector(s) for s in sentences]) if sentences else np.zeros((0, self.dim), np.float32)


@pytest.fixture()
def hash_encoder() -> HashEncoder:
    return HashEncoder()


@pytest.fixture(autouse=True)
def _no_cache_or_download(tmp_path, monkeypatch):
    """Evaluation tests never see a user's download cache or reach the hub."""
    monkeypatch.setenv("DECONE_CACHE", str(tmp_path / "decone-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
