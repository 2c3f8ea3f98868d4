"""Semantic textual similarity: STS12-16, STS Benchmark (test), SICK-R (test), SentEval's protocol.

Score: Spearman (and Pearson) x 100 between the cosine of the two sentence embeddings and the gold score. Sentences
are whitespace-normalised (SentEval splits on whitespace and the batcher joins with one space) and lines with an empty
gold score are dropped, as SentEval does.

STS12-16 are each made of subsets (MSRpar, headlines, ...). Three ways to aggregate a year:

* ``all``:   the subsets concatenated, one correlation over all pairs (SimCSE's setting; our headline number);
* ``mean``:  the plain mean of the per-subset correlations;
* ``wmean``: the mean of the per-subset correlations weighted by subset size (SentEval's reported "all" number).

STS-B and SICK-R have one test set, so the three coincide. The "avg" column is the plain mean over the 7 tasks of one
aggregation (``all`` for the headline).

The trainer uses :func:`read_sts_benchmark` and :func:`spearman_on_pairs` for dev evaluation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from decone.errors import DataError
from decone.evaluate import core
from decone.evaluate.data import check_scored, locate, numbered, parse_score, resolve_names

Pair = tuple[str, str, float]

STS_YEARS: dict[str, tuple[str, ...]] = {
    "STS12": ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"),
    "STS13": ("FNWN", "headlines", "OnWN"),  # SMT is not distributed
    "STS14": ("deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"),
    "STS15": ("answers-forums", "answers-students", "belief", "headlines", "images"),
    "STS16": ("answer-answer", "headlines", "plagiarism", "postediting", "question-question"),
}
STS_TASKS: tuple[str, ...] = (*STS_YEARS, "STSBenchmark", "SICKRelatedness")
DISPLAY = {**{y: y for y in STS_YEARS}, "STSBenchmark": "STS-B", "SICKRelatedness": "SICK-R"}
ALIASES = {**{y.lower(): y for y in STS_TASKS}, "sts-b": "STSBenchmark", "stsb": "STSBenchmark",
           "sick-r": "SICKRelatedness", "sickr": "SICKRelatedness", "sick": "SICKRelatedness"}
AGGREGATIONS = ("all", "mean", "wmean")
# pairs with gold in the SentEval distribution; a different count means the numbers are not comparable
EXPECTED_PAIRS = {"STS12": 3108, "STS13": 1500, "STS14": 3750, "STS15": 3000, "STS16": 1186,
                  "STSBenchmark": 1379, "SICKRelatedness": 4927}
STSB_FILE = "sts/STSBenchmark/sts-{split}.csv"
SICK_FILE = "sts/SICK/SICK_test_annotated.txt"
# a year folder written by the hub download holds one subset of this name (the hub sets are not split by subset)
HUB_SUBSET = "all"


# ---------------------------------------------------------------------- readers
def clean(sentence: str) -> str:
    """Whitespace-normalise as SentEval does (split on whitespace, join with one space)."""
    return " ".join(sentence.split())


def read_sts_subset(input_path: str | os.PathLike, gold_path: str | os.PathLike) -> list[Pair]:
    """One SemEval subset: ``STS.input.<s>.txt`` (two tab-separated sentences a line) and ``STS.gs.<s>.txt``.

    Pairs whose gold line is empty are dropped. A gold score must be a number in [0, 5].
    """
    inputs = list(numbered(input_path))
    golds = list(numbered(gold_path))
    if len(inputs) != len(golds):
        raise DataError(f"{gold_path}: {len(golds)} gold lines for {len(inputs)} sentence pairs in {input_path}")
    pairs: list[Pair] = []
    for (lineno, text), (_, gold) in zip(inputs, golds):
        if not gold.strip():
            continue
        score = parse_score(gold, gold_path, lineno, 0.0, 5.0)
        fields = text.split("\t")
        if len(fields) < 2:
            raise DataError(f"{input_path}:{lineno}: expected two tab-separated sentences, found {len(fields)} field")
        pairs.append((clean(fields[0]), clean(fields[1]), score))
    check_scored(pairs, gold_path, "pairs with a gold score")
    return pairs


def read_sts_year(folder: str | os.PathLike, year: str | None = None) -> dict[str, list[Pair]]:
    """An STS12-16 folder -> {subset: pairs}, subsets in SentEval's order (``year`` defaults to the folder name)."""
    folder = Path(folder)
    year = year or folder.name
    subsets = STS_YEARS[year]
    if not (folder / f"STS.input.{subsets[0]}.txt").is_file() and (folder / f"STS.input.{HUB_SUBSET}.txt").is_file():
        subsets = (HUB_SUBSET,)
    return {s: read_sts_subset(folder / f"STS.input.{s}.txt", folder / f"STS.gs.{s}.txt") for s in subsets}


def read_sts_benchmark(path: str | os.PathLike) -> list[Pair]:
    """An STS Benchmark split (``sts-train.csv``, ``sts-dev.csv``, ``sts-test.csv``) -> [(s1, s2, score)].

    Tab-separated: genre, file, year, id, score (0-5), sentence1, sentence2 (some lines carry extra source fields).
    """
    pairs: list[Pair] = []
    for lineno, line in numbered(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 7:
            raise DataError(f"{path}:{lineno}: expected 7 tab-separated fields (genre, file, year, id, score, "
                            f"sentence1, sentence2), found {len(fields)}")
        score = parse_score(fields[4], path, lineno, 0.0, 5.0)
        pairs.append((clean(fields[5]), clean(fields[6]), score))
    check_scored(pairs, path, "sentence pairs")
    return pairs


def read_sick(path: str | os.PathLike) -> list[Pair]:
    """SICK (``SICK_test_annotated.txt``, tab-separated with a header) -> [(sentence_A, sentence_B, relatedness)].

    Relatedness must be in [1, 5].
    """
    pairs: list[Pair] = []
    for lineno, line in numbered(path, skip_header=True):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 4:
            raise DataError(f"{path}:{lineno}: expected tab-separated pair_ID, sentence_A, sentence_B, "
                            f"relatedness_score, found {len(fields)} field(s)")
        score = parse_score(fields[3], path, lineno, 1.0, 5.0)
        pairs.append((clean(fields[1]), clean(fields[2]), score))
    check_scored(pairs, path, "sentence pairs")
    return pairs


def resolve_tasks(tasks: Sequence[str] | None) -> tuple[str, ...]:
    """Canonical STS task names from user spellings (``sts12``, ``STS-B``, ``sick-r``, ...); all 7 by default."""
    return resolve_names(tasks, STS_TASKS, ALIASES, "STS task", list(DISPLAY.values()))


def required_files(task: str) -> list[str]:
    if task in STS_YEARS:
        return [f"sts/{task}/STS.{kind}.{s}.txt" for s in STS_YEARS[task] for kind in ("input", "gs")]
    if task == "STSBenchmark":
        return [STSB_FILE.format(split="test")]
    return [SICK_FILE]


def sts_root(data_dir: str | os.PathLike | None, tasks: Sequence[str] = STS_TASKS) -> Path:
    """The data root holding the STS files of ``tasks`` (see :func:`decone.evaluate.data.locate`)."""
    required = [f for t in tasks for f in required_files(t)]
    try:
        return locate("STS", data_dir, required, download=download_sts)
    except DataError:
        # a hub-downloaded cache has one subset per year ("all"); accept it where the full layout is missing
        hub_required = [f for t in tasks for f in _hub_files(t)]
        root = _find_hub_layout(data_dir, hub_required)
        if root is None:
            raise
        return root


def load_sts(data_dir: str | os.PathLike | None = None, tasks: Sequence[str] | None = None) -> dict[str, dict[str, list[Pair]]]:
    """{task: {subset: [(s1, s2, gold)]}} for the STS tasks (STS-B and SICK-R have one subset, ``test``)."""
    tasks = resolve_tasks(tasks)
    root = sts_root(data_dir, tasks)
    out: dict[str, dict[str, list[Pair]]] = {}
    for task in tasks:
        if task in STS_YEARS:
            out[task] = read_sts_year(root / "sts" / task, task)
        elif task == "STSBenchmark":
            out[task] = {"test": read_sts_benchmark(root / STSB_FILE.format(split="test"))}
        else:
            out[task] = {"test": read_sick(root / SICK_FILE)}
    return out


# ---------------------------------------------------------------------- scoring
def aggregate(subsets: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Correlations of one task from {subset: (system scores, gold scores)}.

    Returns ``{"n", "spearman": {all, mean, wmean}, "pearson": {all, mean, wmean}, "subsets": {name: {n, spearman,
    pearson}}}``, correlations x 100: ``all`` over the concatenated subsets, ``mean`` the plain mean of per-subset
    correlations, ``wmean`` their mean weighted by subset size.
    """
    per = {}
    for name, (sys_scores, gold) in subsets.items():
        per[name] = {"n": int(len(gold)), "spearman": core.spearman100(sys_scores, gold),
                     "pearson": core.pearson100(sys_scores, gold)}
    all_sys = np.concatenate([np.asarray(s, dtype=np.float64) for s, _ in subsets.values()]) if subsets else np.zeros(0)
    all_gold = np.concatenate([np.asarray(g, dtype=np.float64) for _, g in subsets.values()]) if subsets else np.zeros(0)
    weights = np.array([p["n"] for p in per.values()], dtype=np.float64)
    result: dict = {"n": int(weights.sum()), "subsets": per}
    for metric, fn in (("spearman", core.spearman100), ("pearson", core.pearson100)):
        vals = np.array([p[metric] for p in per.values()], dtype=np.float64)
        result[metric] = {
            "all": fn(all_sys, all_gold),
            "mean": float(vals.mean()) if len(vals) else float("nan"),
            "wmean": float(np.average(vals, weights=weights)) if len(vals) and weights.sum() > 0 else float("nan"),
        }
    return result


def spearman_on_pairs(encoder, pairs: Sequence[Sequence], batch_size: int = 64, bf16: bool | None = False) -> float:
    """Spearman x 100 between the cosine of each pair's embeddings and its gold score.

    ``pairs`` are (s1, s2, score); each distinct sentence is encoded once. For dev evaluation during training::

        dev = read_sts_benchmark(data_dir / "sts/STSBenchmark/sts-dev.csv")
        score = spearman_on_pairs(encoder, dev, batch_size=128)
    """
    pairs = [(p[0], p[1], float(p[2])) for p in pairs]
    lookup = core.encode_unique(encoder, (s for p in pairs for s in p[:2]), batch_size=batch_size, bf16=bf16)
    return core.spearman100(core.pair_cosines(lookup, pairs), [p[2] for p in pairs])


def evaluate_sts(
    encoder,
    data_dir: str | os.PathLike | None = None,
    tasks: Sequence[str] | None = None,
    batch_size: int = 64,
    bf16: bool | None = False,
    data: dict[str, dict[str, list[Pair]]] | None = None,
) -> dict:
    """Evaluate on the STS tasks; every distinct sentence across all tasks is encoded once.

    Args:
        encoder: anything with ``.encode(list[str], batch_size=...) -> (n, d) array``.
        data_dir: data root (see :mod:`decone.evaluate.data`); ignored where ``data`` is given.
        tasks: STS task names (default all 7).
        data: preloaded :func:`load_sts` output, to evaluate several models without re-reading.

    Returns:
        ``{"tasks": {task: aggregate(...) + {"display"}}, "avg": {all, mean, wmean}, "pearson_avg": {...},
        "sentences": distinct sentences encoded, "encode_seconds", "seconds", "warnings": [...]}``.
    """
    with core.Timer() as total:
        data = data if data is not None else load_sts(data_dir, tasks)
        sentences = (s for subsets in data.values() for pairs in subsets.values() for p in pairs for s in p[:2])
        with core.Timer() as enc_t:
            lookup = core.encode_unique(encoder, sentences, batch_size=batch_size, bf16=bf16)
        results: dict = {}
        warnings = []
        for task, subsets in data.items():
            scored = {name: (core.pair_cosines(lookup, pairs), np.array([p[2] for p in pairs])) for name, pairs in subsets.items()}
            res = aggregate(scored)
            res["display"] = DISPLAY.get(task, task)
            results[task] = res
            expected = EXPECTED_PAIRS.get(task)
            if expected is not None and res["n"] != expected:
                warnings.append(f"{res['display']}: {res['n']} pairs, not the {expected} of SentEval's distribution; "
                                "numbers are not comparable with published ones")
            if task in STS_YEARS and list(subsets) == [HUB_SUBSET]:
                warnings.append(f"{res['display']}: hub copy without subsets, so mean and wmean equal all")
    out = {
        "tasks": results,
        "avg": {agg: core.mean(r["spearman"][agg] for r in results.values()) for agg in AGGREGATIONS},
        "pearson_avg": {agg: core.mean(r["pearson"][agg] for r in results.values()) for agg in AGGREGATIONS},
        "sentences": len(lookup),
        "encode_seconds": enc_t.seconds,
        "seconds": total.seconds,
        "warnings": warnings,
    }
    return out


# ---------------------------------------------------------------------- hub download (optional `datasets`)
HUB_SETS = {
    "STS12": "mteb/sts12-sts", "STS13": "mteb/sts13-sts", "STS14": "mteb/sts14-sts", "STS15": "mteb/sts15-sts",
    "STS16": "mteb/sts16-sts", "STSBenchmark": "mteb/stsbenchmark-sts", "SICKRelatedness": "mteb/sickr-sts",
}


def _hub_files(task: str) -> list[str]:
    if task in STS_YEARS:
        return [f"sts/{task}/STS.input.{HUB_SUBSET}.txt", f"sts/{task}/STS.gs.{HUB_SUBSET}.txt"]
    return required_files(task)


def _find_hub_layout(data_dir, required: list[str]) -> Path | None:
    from decone.evaluate.data import cache_dir, resolve_data_dir

    root = resolve_data_dir(data_dir)
    for cand in ((root,) if data_dir else (root, cache_dir())):
        if cand is not None and all((cand / rel).is_file() for rel in required):
            return cand
    return None


def download_sts(root: Path) -> None:
    """Download the STS test sets from the Hugging Face hub (``datasets``) into ``root`` in the SentEval layout.

    The hub copies (MTEB's) are not split into SemEval subsets, so each year is written as one subset ``all``, for
    which ``mean`` and ``wmean`` equal ``all``. Scores are normalised to 0-5 where a copy stores them 0-1.
    """
    from datasets import load_dataset  # optional dependency

    for task, name in HUB_SETS.items():
        ds = load_dataset(name, split="test")
        rows = [(clean(r["sentence1"]), clean(r["sentence2"]), float(r["score"])) for r in ds]
        if rows and max(r[2] for r in rows) <= 1.0:
            rows = [(a, b, s * 5.0) for a, b, s in rows]
        if task in STS_YEARS:
            folder = root / "sts" / task
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"STS.input.{HUB_SUBSET}.txt").write_text("".join(f"{a}\t{b}\n" for a, b, _ in rows))
            (folder / f"STS.gs.{HUB_SUBSET}.txt").write_text("".join(f"{s:.4f}\n" for *_, s in rows))
        elif task == "STSBenchmark":
            path = root / STSB_FILE.format(split="test")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"hub\t{name}\ttest\t{i:04d}\t{s:.3f}\t{a}\t{b}\n" for i, (a, b, s) in enumerate(rows)))
        else:
            path = root / SICK_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            scores = [s for *_, s in rows]
            if scores and min(scores) < 1.0:  # a 0-5 rescaled copy: back to SICK's 1-5
                rows = [(a, b, 1.0 + s * 4.0 / 5.0) for a, b, s in rows]
            path.write_text("pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
                            + "".join(f"{i}\t{a}\t{b}\t{s:.4f}\tNA\n" for i, (a, b, s) in enumerate(rows)))
