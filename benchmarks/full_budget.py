"""Full-budget runs on decone-raw-mini: one epoch over every 4-40-word sentence of the shared corpus (377k), as
SimCSE's recipe is one epoch over 1M Wikipedia sentences, with STS-B dev evaluated as it trains and its best
checkpoint kept (the final model folder); the encoder is also kept at fixed numbers of sentences seen, so STS can be
plotted against the budget. Then BERT-whitening on top of the best run (chosen by STS-B dev, never by test).

    python benchmarks/full_budget.py --run simcse        # train one run (resumable), evaluate what it kept
    python benchmarks/full_budget.py --run mirror &      # ... runs can go side by side (1 thread each is faster)
    python benchmarks/full_budget.py                     # every run, whitening on the best, table and plot

Each finished run's numbers go to ``results/full_budget/<run>.json`` (committed: a fresh checkout rebuilds the
section without training); models stay in ``results/work/full_budget/`` (not committed). ``benchmarks/results.py``
runs this piece too. The runs take tens of minutes each on a laptop CPU; they are not part of CI.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import _common as C  # noqa: E402

# every run: raw-mini, mean pooling, lr 1e-4 (as RESULTS.md's main table), seed 42; the rest is each method's default
RUNS = {
    "simcse": dict(method="simcse"),
    "simcse-nohead": dict(method="simcse", head="none"),
    "mirror": dict(method="mirror"),
}
LABELS = {"simcse": "simcse", "simcse-nohead": "simcse, no MLP head in training", "mirror": "mirror"}
MARKS = (6_400, 25_600, 51_200, 102_400, 204_800)  # sentences seen at which the encoder is kept (and the epoch's end)
DEV_EVERY = 16_000  # sentences between STS-B dev evaluations (SimCSE: every 250 steps of 64)


def budget(quick: bool) -> dict:
    """``quick``: 3,200 sentences, kept at 1,600 seen (a multiple of both batch sizes), two STS tasks (a smoke run of the whole piece)."""
    if quick:
        return dict(sentences=3_200, marks=(1_600,), dev_every=800, sts_tasks=["STSBenchmark", "SICKRelatedness"],
                    probe_pairs=300)
    return dict(sentences=None, marks=MARKS, dev_every=DEV_EVERY, sts_tasks=None, probe_pairs=1000)


def corpus_file(shared: Path, n: int | None, work: Path, seed: int = 0) -> Path:
    """Every 4-40-word line of the shared corpus (``n``: a seeded sample of that many), shuffled with ``seed``."""
    return C.corpus_sample(shared, n, work / f"corpus_{'all' if n is None else n}_4-40_seed{seed}.txt", seed)


def batch_of(method: str) -> int:
    """The batch size a run trains with: its method's default."""
    from decone.methods import get_method

    return get_method(method).defaults.get("batch_size", 64)


class KeepAt:
    """A training callback that saves the encoder at the given optimizer steps and the last (``folder/<step>``),
    skipping any that a resumed run had already saved."""

    def __init__(self, folder: Path, steps):
        self.folder, self.steps = Path(folder), set(steps)

    def on_step_end(self, state) -> None:
        if (state.step in self.steps or state.step == state.max_steps) and not (self.folder / str(state.step) / "decone.json").exists():
            state.encoder.save(self.folder / str(state.step), meta={"step": state.step})


def settings(name: str, b: dict, shared: Path, corpus: Path) -> dict:
    """The TrainConfig fields of run ``name`` (the record's key: a changed setting retrains)."""
    batch = batch_of(RUNS[name]["method"])
    return dict(model=str(shared / "models/decone-raw-mini"), data=str(corpus), pooling="mean", lr=1e-4, seed=42,
                epochs=1, eval_data=str(shared / "data/sts/STSBenchmark/sts-dev.csv"),
                eval_every=max(1, b["dev_every"] // batch), save_every=max(1, 20_000 // batch), bf16=None,
                **RUNS[name])


def train(name: str, b: dict, shared: Path, work: Path) -> dict:
    """Train run ``name`` (continuing an interrupted one); -> its training summary and the steps it kept."""
    from decone.train import TrainConfig, fit

    corpus = corpus_file(shared, b["sentences"], work)
    config = settings(name, b, shared, corpus)
    out = work / "full_budget" / name
    done = out / "full_budget_train.json"
    revision = C.with_method_revision(config).get("method_revision")  # a changed method trains again
    finished = json.loads(done.read_text()) if done.exists() else None
    if finished and finished["config"] == json.loads(json.dumps(config)) and finished.get("method_revision") == revision:
        return finished
    batch = batch_of(config["method"])
    n = sum(1 for _ in corpus.open(encoding="utf-8"))
    keep = sorted({m // batch for m in b["marks"] if m < n})  # and the run's last step
    marker = work / "full_budget" / f"{name}.method_revision"  # the revision an interrupted run was started with
    started = json.loads(marker.read_text()) if marker.exists() else None
    resume = (out / "checkpoint").exists() and started == revision
    if not resume:  # a fresh run (e.g. after a setting changed): what an earlier run kept is not this run's
        shutil.rmtree(work / "full_budget" / f"{name}.kept", ignore_errors=True)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(revision))
    C.log(f"full budget: {name}, one epoch in batches of {batch} ({n:,} sentences){' (resuming)' if resume else ''}")
    t0 = time.perf_counter()
    summary = fit(TrainConfig(output=str(out), overwrite=not resume, resume=resume, **config),
                  callbacks=[KeepAt(work / "full_budget" / f"{name}.kept", keep)])
    kept = sorted(int(p.name) for p in (work / "full_budget" / f"{name}.kept").iterdir() if p.name.isdigit())
    info = {"config": config, "summary": summary, "batch": batch, "kept": kept, "sentences": n,
            "wall_s": round(time.perf_counter() - t0, 1), "resumed": resume,
            **({"method_revision": revision} if revision else {})}
    done.write_text(json.dumps(info))
    return info


def stopped(name: str, b: dict, shared: Path, work: Path) -> dict:
    """What a run stopped before the epoch's end left (``--partial``): the encoders kept so far and its best STS-B dev
    checkpoint. The learning rate follows the whole epoch's schedule, so each kept point is the one the whole run has."""
    corpus = corpus_file(shared, b["sentences"], work)
    config = settings(name, b, shared, corpus)
    run = work / "full_budget" / name
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines() if line.strip()]
    dev = [r for r in log if "eval_spearman" in r]
    if not dev:
        sys.exit(f"{run}: no STS-B dev evaluation yet: nothing to record")
    best = max(dev, key=lambda r: r["eval_spearman"])
    batch = batch_of(config["method"])
    folder = work / "full_budget" / f"{name}.kept"
    kept = sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []
    if not kept:
        sys.exit(f"{folder}: the run kept no encoder yet (first at {b['marks'][0]:,} sentences): nothing to record")
    return {"config": config, "batch": batch, "kept": kept, "resumed": True, "complete": False,
            "sentences": sum(1 for _ in corpus.open(encoding="utf-8")), "stopped_at": max(r["step"] for r in log) * batch,
            "summary": {"best_step": best["step"], "best_eval_spearman": best["eval_spearman"]}}


def record(name: str, b: dict, shared: Path, work: Path, out: Path, probe, eval_data: dict, partial: bool = False,
           accept_incomplete: bool = True) -> dict:
    """Train (or reuse) run ``name``, evaluate every kept encoder and the best dev checkpoint; write the record.
    ``partial``: record what a run stopped early left instead (marked incomplete; always redone, the run may have
    gone further). A committed incomplete record is reused only with ``accept_incomplete`` (not when the run is asked
    for by name: then it is trained to the epoch's end). The record's ``build_s`` is what building it took in this
    invocation: training included where it trained, evaluation only where the run had finished before."""
    corpus = corpus_file(shared, b["sentences"], work)
    config = settings(name, b, shared, corpus)
    key = {**config, "data": Path(config["data"]).name, "model": "decone-raw-mini",
           "eval_data": "STSBenchmark/sts-dev.csv", "marks": list(b["marks"]), "sts_tasks": b["sts_tasks"],
           "probe_pairs": b["probe_pairs"]}

    def build() -> dict:
        info = stopped(name, b, shared, work) if partial else train(name, b, shared, work)
        wanted = ("sts", "sts_avg", "words_avg", "avg_cosine", "isoscore", "alignment", "uniformity")
        points = []
        for step in info["kept"]:
            row = C.evaluate(f"full_budget {name} step {step}", str(work / "full_budget" / f"{name}.kept" / str(step)),
                             None, work, probe, eval_data)
            points.append({"step": step, "sentences": min(step * info["batch"], info["sentences"]),
                           **{k: row[k] for k in wanted if k in row}})
        best = C.evaluate(f"full_budget {name} best dev", str(work / "full_budget" / name), None, work, probe, eval_data)
        log = [json.loads(line) for line in (work / "full_budget" / name / "train_log.jsonl").read_text().splitlines()
               if line.strip()]
        return {"run": name, "batch": info["batch"], "steps": info["kept"][-1], "sentences": info["sentences"],
                "wall_s": info["wall_s"] if not info["resumed"] else None,
                "best_step": info["summary"]["best_step"], "best_dev": info["summary"]["best_eval_spearman"],
                "dev_curve": [[r["step"] * info["batch"], r["eval_spearman"]] for r in log if "eval_spearman" in r],
                "points": points, "best": {k: best[k] for k in wanted if k in best},
                "complete": info.get("complete", True), "stopped_at": info.get("stopped_at")}

    def reuse(rec: dict) -> bool:
        return not partial and (rec["value"].get("complete", True) or accept_incomplete)

    rec = C.Records("full_budget", out, shared, quick=bool(b["sentences"])).record(
        name, key, build, reuse)
    return {**rec["value"], "key": rec["key"]}  # the run's key: whitening on it is redone when the run changes


def whitened_best(records: dict, b: dict, shared: Path, work: Path, out: Path, probe, eval_data: dict) -> dict:
    """BERT-whitening (fitted on STS-B train sentences) on the best run's kept checkpoint, the best by STS-B dev."""
    name = max(records, key=lambda r: records[r]["best_dev"])
    key = {"of": name, "run_key": records[name]["key"], **{k: records[name].get(k) for k in (
        "complete", "best_step", "stopped_at")}}

    def build() -> dict:
        shutil.rmtree(work / "full_budget" / f"{name}.whitened", ignore_errors=True)  # fitted on another checkpoint
        folder = C.whitened(str(work / "full_budget" / name), None, work / "full_budget" / f"{name}.whitened", shared)
        row = C.evaluate(f"full_budget {name} best dev + whitening", str(folder), None, work, probe, eval_data)
        return {"run": name, **{k: row[k] for k in ("sts", "sts_avg", "words_avg", "avg_cosine", "isoscore",
                                                     "alignment", "uniformity")}}

    return C.Records("full_budget", out, shared, quick=bool(b["sentences"])).get(
        "whitened", key, build)


def baselines(shared: Path, work: Path, probe, eval_data: dict) -> dict:
    """raw-mini with mean pooling, without and with whitening (the same labels, so the same cache, as results.py)."""
    raw = str(shared / "models/decone-raw-mini")
    white = C.whitened(raw, "mean", work / "whitened", shared)
    return {"raw": C.evaluate("raw-mini mean", raw, "mean", work, probe, eval_data),
            "whitened": C.evaluate("raw-mini mean + whitening", str(white), None, work, probe, eval_data)}


def verdict(records: dict, white: dict, base: dict) -> list[str]:
    """The piece in sentences: whitening against the runs that finished the epoch, whitening on the best run, and
    where each run peaked."""
    w = base["whitened"]["sts_avg"]
    said = [f"At 0 sentences (raw mean pooling) STS avg is {base['raw']['sts_avg']:.2f}; training-free BERT-whitening "
            f"of it is {w:.2f}."]
    whole = {n: r for n, r in records.items() if r.get("complete", True)}
    if whole:
        best = max(whole.values(), key=lambda r: r["best"]["sts_avg"])
        beat = [LABELS[n] for n, r in whole.items() if r["best"]["sts_avg"] > w]
        said.append(("With the whole epoch, " + ", ".join(beat) + " beat" + ("s" if len(beat) == 1 else "") +
                     f" training-free whitening (best: {LABELS[best['run']]} {best['best']['sts_avg']:.2f})." if beat else
                     f"Even with the whole epoch, no contrastive run beats training-free whitening (best: "
                     f"{LABELS[best['run']]} {best['best']['sts_avg']:.2f} vs {w:.2f})."))
    said.append(f"Whitening on top of the best run by STS-B dev ({LABELS[white['run']]}): {white['sts_avg']:.2f} "
                f"({white['sts_avg'] - records[white['run']]['best']['sts_avg']:+.2f}; avg cos "
                f"{white['avg_cosine']:.3f}).")
    for name, r in records.items():
        sts = [p["sts_avg"] for p in r["points"]]
        at = r["points"][sts.index(max(sts))]["sentences"]
        if r.get("complete", True) and at == r["points"][-1]["sentences"]:
            said.append(f"{LABELS[name]} is still rising at the epoch's end ({sts[-1]:.2f}; STS-B dev best at the last "
                        "evaluation too)." if r["best_step"] * r["batch"] >= r["sentences"] else
                        f"{LABELS[name]}'s best kept point is the epoch's end ({sts[-1]:.2f}), but its STS-B dev peaked "
                        f"earlier, after {r['best_step'] * r['batch']:,} sentences (STS avg {r['best']['sts_avg']:.2f} "
                        "there): it has flattened out.")
            continue
        said.append(f"{LABELS[name]} peaks at {max(sts):.2f} after {at:,} sentences and "
                    + (f"ends the epoch at {sts[-1]:.2f}." if r.get("complete", True) else
                       f"was stopped at {r['stopped_at']:,} of {r['sentences']:,} sentences (out of time on this "
                       "machine; its best-dev columns are of the part it ran)."))
    return said


def markdown(records: dict, white: dict, base: dict, b: dict, figure: str) -> list[str]:
    """RESULTS.md's section: STS avg at each budget, the kept dev checkpoint, whitening on the best, and the verdict."""
    for r in records.values():  # a complete run: every mark, then the epoch's end; a stopped one: the marks it reached
        at = [p["sentences"] for p in r["points"]]
        assert at[:-1] == list(b["marks"]) if r.get("complete", True) else at == list(b["marks"])[:len(at)], r["run"]
    marks = list(b["marks"])  # multiples of every run's batch: each run's points but the last are at these counts
    head = "| method | " + " | ".join(f"{m:,}" for m in marks) + " | epoch end | best STS-B dev (at sentences) | " \
        "STS avg there | words avg | avg cos | IsoScore | train wall |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in records.items():
        sts = [p["sts_avg"] for p in r["points"]]
        peak = max(sts)
        cells = [f"**{s:.2f}**" if s == peak else f"{s:.2f}" for s in sts]
        if not r.get("complete", True):  # stopped early: the marks it did not reach, and where it stopped
            cells += ["—"] * (len(b["marks"]) - len(sts)) + [f"stopped at {r['stopped_at']:,}"]
        wall = f"{r['wall_s'] / 60:.1f} min" if r.get("wall_s") else "(resumed)" if r.get("complete", True) else "—"
        lines.append(f"| {LABELS[name]} (batch {r['batch']}) | " + " | ".join(cells) +
                     f" | {r['best_dev']:.2f} ({min(r['best_step'] * r['batch'], r['sentences']):,}) | "
                     f"{r['best']['sts_avg']:.2f} | "
                     f"{r['best']['words_avg']:.2f} | {r['best']['avg_cosine']:.3f} | {r['best']['isoscore']:.3f} | {wall} |")
    said = verdict(records, white, base)
    return ["One seed (42) a run: a single full-budget run each, so small differences between methods are not "
            "claims (compare them with the seed spread of the head-to-head above).", "",
            *lines, "", "STS avg (Spearman x100, SentEval \"all\", 7 tasks) of the encoder kept after that many "
            "sentences; *best STS-B dev*: the checkpoint with the best STS-B dev Spearman (evaluated every "
            f"{b['dev_every']:,} sentences), which the run's model folder keeps, as SimCSE does. *train wall*: "
            "one thread a run, side by side with other runs on the machine named in the cost table: an upper bound, "
            "not a speed figure (those are in docs/performance.md).", "",
            " ".join(said), "", f"![STS against sentences seen]({figure})"]


def plot(records: dict, white: dict, base: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, r in records.items():
        xs = [p["sentences"] for p in r["points"]]
        ax.plot(xs, [p["sts_avg"] for p in r["points"]], marker="o", label=LABELS[name])
    ax.axhline(base["whitened"]["sts_avg"], color="k", ls="--", lw=1, label="raw mean + whitening (no training)")
    ax.axhline(base["raw"]["sts_avg"], color="grey", ls=":", lw=1, label="raw mean pooling")
    best = records[white["run"]]
    ax.scatter([best["best_step"] * best["batch"]], [white["sts_avg"]], marker="*", s=140, color="k", zorder=5,
               label=f"best ({LABELS[white['run']]}) + whitening")
    ax.set_xscale("log")
    ax.set_xlabel("sentences seen (one epoch = the whole corpus)")
    ax.set_ylabel("STS avg (Spearman x100)")
    ax.set_title("decone-raw-mini: STS against training budget")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def piece(quick: bool, out: Path, figs: Path, runs=None, partial=()) -> tuple[list[str], list[str]] | None:
    """Run (or reuse) the piece; (RESULTS.md's section, the README's lines), or None when ``runs`` names only some
    runs (a side-by-side invocation: it trains and records them, the one without ``runs`` assembles)."""
    from decone.diagnostics.dynamics import DynamicsCallback, default_probe
    from decone.evaluate import sts, words

    b = budget(quick)
    shared = C.shared()
    work = out / "results" / ("work-quick" if quick else "work")
    sentences, pairs = default_probe(b["probe_pairs"], 0)
    probe = DynamicsCallback(0, sentences, pairs, plot=False)
    eval_data = {"sts": sts.load_sts(tasks=b["sts_tasks"]), "words": words.load_words()}
    records = {name: record(name, b, shared, work, out, probe, eval_data, partial=name in partial,
                            accept_incomplete=not runs) for name in (runs or RUNS)}
    if runs:
        return None
    base = baselines(shared, work, probe, eval_data)
    white = whitened_best(records, b, shared, work, out, probe, eval_data)
    plot(records, white, base, figs / "full_budget.png")
    figure = ("results/quick" if quick else "results") + "/full_budget.png"
    return (markdown(records, white, base, b, figure),
            [" ".join(verdict(records, white, base)) + " Details: RESULTS.md's full-budget section.", "",
             f"![STS against sentences seen]({figure})"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", choices=list(RUNS), help="train and record only this run (repeatable)")
    parser.add_argument("--partial", action="append", choices=list(RUNS), default=[],
                        help="record what this run, stopped before the epoch's end, left (repeatable)")
    parser.add_argument("--quick", action="store_true", help="a smoke run on 3,200 sentences")
    parser.add_argument("--output", default=str(ROOT), help="repository root to write results/ under")
    args = parser.parse_args()
    out = Path(args.output)
    built = piece(args.quick, out, out / ("results/quick" if args.quick else "results"), args.run, args.partial)
    if built:
        print("\n".join(built[0]))


if __name__ == "__main__":
    main()
