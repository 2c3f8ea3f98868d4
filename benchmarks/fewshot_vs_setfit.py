"""Few-shot classification on one sentence-tuned backbone: decone CE, decone CE + SCL, a frozen-embedding floor and
SetFit, on the same sampled shots.

    pip install --no-deps setfit evaluate       # setfit 1.2 runs on decone's transformers / sentence-transformers
    python benchmarks/fewshot_vs_setfit.py                                   # the grid below (hours on a CPU)
    python benchmarks/fewshot_vs_setfit.py --tasks SST-2 --shots 8 --noise 0 --seeds 2     # a slice
    python benchmarks/fewshot_vs_setfit.py --report-only                     # tables and plot from the finished runs

Grid: tasks SST-2 and TREC (6 classes), 8, 16 and 64 shots per class, label noise 0, 0.2 and 0.4 (the CE + SCL
paper's noise study: that fraction of the sampled labels flipped to another class), seeds 0-4. Systems, all on
all-MiniLM-L6-v2:

* ``setfit``: SetFit (Tunstall et al. 2022, arXiv:2209.11055) with its defaults: contrastive pairs drawn by its
  oversampling strategy, CosineSimilarityLoss for one epoch of batch 16 at lr 2e-5, then scikit-learn's logistic
  regression on the tuned embeddings. ``--setfit-iterations 20`` uses the SetFit paper's 20 pair-iterations instead
  (at 64 shots x 6 classes the default draws 122,880 pairs: hours a run on a CPU);
* ``ce``: decone's classifier fine-tuning (``decone fewshot``, method ``scl``) with lambda = 0: cross-entropy only,
  the linear head started from a logistic-regression probe on the frozen features (``scl``'s default);
* ``scl``: the same with lambda = 0.9, (1 - lambda) CE + lambda SupCon, temperature 0.3 (Gunel et al. 2021,
  arXiv:2011.01403);
* ``logreg``: the floor: logistic regression (scikit-learn, as SetFit's head) on the frozen decone embeddings.

Every system of a (task, shots, noise, seed) sees the same sentences and the same (noisy) labels, drawn by
:func:`decone.classify.fewshot.draw_shots` and written to ``samples/`` in the output folder, and is scored on the
task's whole test set (SST-2: 1,821 sentences; TREC: 500 questions). One JSON line per finished run goes to
``runs.jsonl``; a rerun skips what is there, so the grid can be built over several invocations (side by side
too: the file is locked while it is read or appended to). A SetFit run stopped part way resumes from its newest
checkpoint (SetFit's default: every 500 steps, under ``results/work/setfit_checkpoints``). ``summary.md`` and
``accuracy_vs_shots.png`` are written from whatever has finished. The default output, ``results/setfit``, is part of
the repository: ``benchmarks/results.py`` puts its tables into RESULTS.md and the README without rerunning a run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from decone.classify.fewshot import append_run, draw_shots, read_runs  # noqa: E402  (runs.jsonl as decone fewshot)

SYSTEMS = ("setfit", "ce", "scl", "logreg")
LABELS = {"setfit": "SetFit", "ce": "decone CE", "scl": "decone CE+SCL (λ=0.9)", "logreg": "frozen + logreg"}
MODEL_NAMES = {"minilm": "all-MiniLM-L6-v2", "raw-mini": "decone-raw-mini"}
DEFAULT_OUT = C.ROOT / "results" / "setfit"  # committed: runs.jsonl, samples/, summary.md and the plot are the results
DEFAULT_CHECKPOINTS = C.ROOT / "results" / "work" / "setfit_checkpoints"  # not committed; a finished run's is removed


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="SST-2,TREC")
    p.add_argument("--shots", default="8,16,64", help="shots per class, comma-separated")
    p.add_argument("--noise", default="0,0.2,0.4", help="fractions of flipped labels, comma-separated")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    p.add_argument("--only-seeds", help="of those, run only these (comma-separated), e.g. to split the seeds of a slow "
                                        "setting between invocations side by side; the summary covers every finished run")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--model", default="minilm", help="minilm (all-MiniLM-L6-v2), raw-mini or a folder")
    p.add_argument("--setfit-iterations", type=int, default=None,
                   help="SetFit's num_iterations (the SetFit paper: 20); default: its own default sampling")
    p.add_argument("--setfit-save-steps", type=int, default=500,
                   help="SetFit's checkpoint interval, its default [500]; an unfinished run resumes from the newest")
    p.add_argument("--epochs", type=int, default=20, help="decone CE / CE+SCL epochs over the shots [20]")
    p.add_argument("--lr", type=float, default=5e-5, help="decone CE / CE+SCL learning rate [5e-5]")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--output", default=str(DEFAULT_OUT))
    p.add_argument("--checkpoints", default=str(DEFAULT_CHECKPOINTS),
                   help="SetFit's checkpoints of unfinished runs, to resume from [results/work/setfit_checkpoints]")
    p.add_argument("--report-only", action="store_true", help="only write summary.md and the plot from runs.jsonl")
    a = p.parse_args(argv)
    a.tasks = [t.strip() for t in a.tasks.split(",") if t.strip()]
    a.shots = [int(x) for x in a.shots.split(",")]
    a.noise = [float(x) for x in a.noise.split(",")]
    a.systems = [s.strip() for s in a.systems.split(",") if s.strip()]
    unknown = sorted(set(a.systems) - set(SYSTEMS))
    if unknown:
        p.error(f"--systems: unknown {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    if any(s < 2 for s in a.shots):
        p.error("--shots: at least 2 per class (the contrastive terms need a positive)")
    if any(not 0 <= x < 1 for x in a.noise):
        p.error("--noise: fractions in [0, 1)")
    if a.seeds < 1:
        p.error("--seeds must be >= 1")
    if a.setfit_save_steps < 1:
        p.error("--setfit-save-steps must be >= 1")
    try:
        a.only_seeds = None if a.only_seeds is None else sorted({int(x) for x in a.only_seeds.split(",") if x.strip()})
    except ValueError:
        p.error(f"--only-seeds {a.only_seeds!r}: expected comma-separated integers")
    if a.only_seeds is not None and not (a.only_seeds and set(a.only_seeds) <= set(range(a.seeds))):
        p.error(f"--only-seeds: each in 0 .. {a.seeds - 1} (--seeds {a.seeds})")
    return a


# ------------------------------------------------------------------------------------------------------------ runs
def run_key(task: str, shots: int, noise: float, seed: int, system: str) -> str:
    return f"{task}|{shots}|{noise:g}|{seed}|{system}"


def settings(a) -> dict:
    """What a run's result depends on besides its grid point; a cached run with other settings is not reused."""
    return {"model": a.model, "setfit_iterations": a.setfit_iterations, "epochs": a.epochs, "lr": a.lr,
            "batch_size": a.batch_size, "head_init": "probe"}


class Task:
    """A task's pool and test set, its classes, and the frozen backbone's test embeddings (computed once)."""

    def __init__(self, name: str, model: str):
        from decone.classify.tasks import canonical_task, fewshot_splits, load_task

        self.name = canonical_task(name)
        task = load_task(self.name)
        self.pool, self.test = fewshot_splits(task)
        self.classes = list(task["labels"])
        self.model = model
        self._test_features = None

    def draw(self, shots_per_class: int, noise: float, seed: int) -> dict:
        sample, noisy, flipped = draw_shots([y for _, y in self.pool], self.classes,
                                            shots_per_class * len(self.classes), noise, seed)
        return {"indices": [int(i) for i in sample], "labels": noisy, "flipped": [int(i) for i in flipped],
                "texts": [self.pool[i][0] for i in sample]}

    def test_features(self, encoder) -> np.ndarray:
        if self._test_features is None:
            self._test_features = encoder.encode([t for t, _ in self.test], batch_size=128, show_progress=False)
        return self._test_features


def checkpoint_folder(a, key: str, shots: dict) -> Path:
    """Where a SetFit run keeps its checkpoints: named by its grid point and a digest of everything its training
    depends on (its settings, its sampled shots and labels, the output it belongs to, the library versions), so that
    no other run ever resumes from this one's. The output is named relative to the repository where it lies inside
    it, so a moved checkout keeps its checkpoints; a folder named the earlier way (absolute output path) that exists
    is still the run's own."""
    output = Path(a.output).resolve()
    try:
        portable = output.relative_to(C.ROOT.resolve()).as_posix()
    except ValueError:  # outside the repository: its absolute path
        portable = str(output)
    current = _checkpoint_name(a, key, shots, portable)
    earlier = _checkpoint_name(a, key, shots, str(output))
    return earlier if earlier.exists() and not current.exists() else current


def _checkpoint_name(a, key: str, shots: dict, output: str) -> Path:
    what = {"settings": settings(a), "indices": shots["indices"], "labels": shots["labels"], "output": output,
            "versions": [_version(p) for p in ("setfit", "sentence-transformers", "transformers", "torch")]}
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]
    return Path(a.checkpoints) / f"{key.replace('|', '_')}_{digest}"


def _elapsed_file(checkpoints: Path, step: int) -> Path:
    """Beside ``checkpoint-<step>`` (not in it: the trainer deletes the older checkpoint before its ``on_save``):
    the training seconds spent up to that step, written before the checkpoint itself."""
    return checkpoints / f"elapsed-{step}.json"


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` of a SetFit run, or None: complete means its trainer state (the last
    file the trainer writes into it) parses and its elapsed-time file is there."""
    def complete(c: Path) -> bool:
        if not c.name[11:].isdigit() or not _elapsed_file(folder, int(c.name[11:])).exists():
            return False
        try:
            json.loads((c / "trainer_state.json").read_text())
            return True
        except (OSError, ValueError):
            return False
    return max((c for c in folder.glob("checkpoint-*") if complete(c)), key=lambda c: int(c.name[11:]), default=None)


def train_setfit(model_path: str, shots: dict, seed: int, a, checkpoints: Path, callbacks=()):
    """SetFit with its defaults, its default checkpointing included (every ``a.setfit_save_steps`` = 500 steps, the
    newest kept) into ``checkpoints``: a run stopped part way (a 64-shot TREC run is 7,680 steps) resumes from its
    newest checkpoint (with the save interval it started with). Returns the trained SetFitModel and
    ``{"steps", "train_s", "save_s", "own_save_s", "before_s", "resumed_at_step"}``: train_s is the training time
    without the checkpoint writes (timed apart as save_s, own_save_s this call's share, so that runs compare with
    runs that wrote none), before_s the part of it spent before the checkpoint resumed from (0 for a fresh run; the
    steps after that checkpoint that an interrupted invocation trained and lost are not counted). ``callbacks``:
    more ``transformers.TrainerCallback`` s for SetFit's embedding phase."""
    try:
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments
        from transformers import TrainerCallback
    except ImportError:
        raise SystemExit("setfit is not installed: pip install --no-deps setfit evaluate (or --systems without setfit)")

    resume = latest_checkpoint(checkpoints)
    before = json.loads(_elapsed_file(checkpoints, int(resume.name[11:])).read_text()) if resume else {}
    before_s, save_s = before.get("train_s", 0.0), [before.get("save_s", 0.0)]
    saving = [None]

    class TimeCheckpoints(TrainerCallback):
        """Runs after transformers' DefaultFlowCallback, which decides ``should_save`` in its own on_step_end."""

        def on_step_end(self, args, state, control, **kwargs):
            if control.should_save:
                saving[0] = time.perf_counter()
                elapsed = {"step": state.global_step, "save_s": save_s[0],
                           "train_s": before_s + saving[0] - t_train - (save_s[0] - before.get("save_s", 0.0))}
                checkpoints.mkdir(parents=True, exist_ok=True)
                path = _elapsed_file(checkpoints, state.global_step)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(elapsed) + "\n")
                tmp.replace(path)

        def on_save(self, args, state, control, **kwargs):
            if saving[0] is not None:
                save_s[0] += time.perf_counter() - saving[0]
                saving[0] = None

    model = SetFitModel.from_pretrained(model_path)
    args = TrainingArguments(output_dir=str(checkpoints), num_iterations=a.setfit_iterations, report_to="none",
                             save_steps=a.setfit_save_steps, seed=seed, show_progress_bar=False)
    trainer = Trainer(model=model, args=args, callbacks=[TimeCheckpoints(), *callbacks],
                      train_dataset=Dataset.from_dict({"text": shots["texts"], "label": shots["labels"]}))
    if resume is not None:
        print(f"  resuming SetFit from {resume.name} ({before_s:.0f} s of training before)", flush=True)
        st_train = trainer.st_trainer.train  # SetFit's train() calls it with no arguments
        trainer.st_trainer.train = lambda *args_, **kw: st_train(*args_, resume_from_checkpoint=str(resume), **kw)
    t_train = time.perf_counter()
    trainer.train()
    own_save_s = save_s[0] - before.get("save_s", 0.0)
    return model, {"steps": int(trainer.st_trainer.state.global_step),
                   "train_s": before_s + time.perf_counter() - t_train - own_save_s, "save_s": save_s[0],
                   "own_save_s": own_save_s, "before_s": before_s, "resumed_at_step": int(resume.name[11:]) if resume else None}


def claim_run(checkpoints: Path):
    """The lock of one SetFit run (beside its checkpoint folder), acquired, or None while another invocation holds
    it. The caller releases it once the run's row is in runs.jsonl, so that no other invocation trains the run again
    in between."""
    from filelock import FileLock, Timeout

    checkpoints.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(checkpoints) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


def run_setfit(task: Task, shots: dict, seed: int, a, checkpoints: Path) -> dict:
    """One SetFit run (resumed from its newest checkpoint, if any), scored on the test set. The caller holds the
    run's lock (:func:`claim_run`)."""
    t0 = time.perf_counter()
    model, trained = train_setfit(task.model, shots, seed, a, checkpoints)
    t_eval = time.perf_counter()
    pred = [str(y) for y in model.predict([t for t, _ in task.test], batch_size=128, show_progress_bar=False)]
    eval_s = time.perf_counter() - t_eval
    accuracy = float(np.mean([p == y for p, (_, y) in zip(pred, task.test)]))
    out = {"accuracy": accuracy, "steps": trained["steps"], "train_s": trained["train_s"], "eval_s": eval_s,
           "save_s": trained["save_s"],  # SetFit's checkpoint writes, left out of train_s and wall_s
           "wall_s": trained["before_s"] + time.perf_counter() - t0 - trained["own_save_s"]}
    if trained["resumed_at_step"] is not None:
        out["resumed_at_step"] = trained["resumed_at_step"]
    return out


def run_decone(task: Task, shots_per_class: int, noise: float, seed: int, lam: float, a, shots: dict) -> dict:
    from decone.classify.fewshot import FewShotConfig, train_and_evaluate

    cfg = FewShotConfig(task=task.name, model=task.model, output="", epochs=a.epochs, lr=a.lr,
                        batch_size=a.batch_size)
    row = train_and_evaluate(cfg, task.pool, task.test, task.classes, shots_per_class * len(task.classes), noise,
                             lam, seed)
    assert row["n_train"] == len(shots["indices"]) and row["n_flipped"] == len(shots["flipped"])
    return {"accuracy": row["accuracy"], "steps": row["steps"], "train_s": row["train_s"], "eval_s": row["eval_s"],
            "wall_s": row["wall_s"]}


def run_logreg(task: Task, shots: dict, encoder) -> dict:
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    x = encoder.encode(shots["texts"], batch_size=128, show_progress=False)
    head = LogisticRegression(max_iter=1000).fit(x, shots["labels"])
    train_s = time.perf_counter() - t0
    t_eval = time.perf_counter()
    pred = head.predict(task.test_features(encoder))
    eval_s = time.perf_counter() - t_eval
    accuracy = float(np.mean([p == y for p, (_, y) in zip(pred, task.test)]))
    return {"accuracy": accuracy, "steps": 0, "train_s": train_s, "eval_s": eval_s, "wall_s": train_s + eval_s}


def run_grid(a) -> list[dict]:
    """Every (noise, shots, task, seed, system) not yet in runs.jsonl, noise-major so that an interrupted grid has
    whole cells (every system and seed of a setting) first."""
    import torch

    from decone.encoder import Encoder

    out = Path(a.output)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    runs_path = out / "runs.jsonl"
    want = settings(a)
    done = {r["key"] for r in read_runs(runs_path) if r.get("settings") == want}
    model = C.model_path(a.model)
    tasks = {name: Task(name, model) for name in a.tasks}
    encoder = Encoder.load(model) if "logreg" in a.systems else None
    seeds = a.only_seeds if a.only_seeds is not None else range(a.seeds)
    grid = [(t, s, p, seed, system) for p in a.noise for s in a.shots for t in tasks for seed in seeds
            for system in a.systems]
    todo = [g for g in grid if run_key(tasks[g[0]].name, *g[1:]) not in done]
    print(f"{len(grid)} runs, {len(grid) - len(todo)} already done; output {out}", flush=True)
    machine = {"cpu": C.machine()["cpu"], "native_bf16": C.native_bf16()}  # wall times (and bf16 autocast) depend on it

    def record(key, task, shots_per_class, noise, seed, system, shots, res):
        row = {"key": key, "task": task.name, "shots": shots_per_class, "noise": noise, "seed": seed,
               "system": system, "settings": want,
               **{k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()},
               "n_train": len(shots["indices"]), "n_flipped": len(shots["flipped"]), "n_test": len(task.test),
               "threads": torch.get_num_threads(),  # wall times depend on it (side by side: OMP_NUM_THREADS=1 each)
               **machine}
        append_run(runs_path, row)
        print(f"[{k}/{len(todo)}] {task.name} {shots_per_class}-shot noise {noise:g} seed {seed} {system}: "
              f"{100 * res['accuracy']:.2f}% ({res['steps']} steps, {res['wall_s']:.1f} s)", flush=True)

    for k, (t, shots_per_class, noise, seed, system) in enumerate(todo, start=1):
        task = tasks[t]
        shots = task.draw(shots_per_class, noise, seed)
        sample_file = out / "samples" / f"{task.name}_{shots_per_class}shot_noise{noise:g}_seed{seed}.json"
        if not sample_file.exists():
            sample_file.write_text(json.dumps({k: v for k, v in shots.items() if k != "texts"}) + "\n")
        key = run_key(task.name, shots_per_class, noise, seed, system)
        where = f"[{k}/{len(todo)}] {task.name} {shots_per_class}-shot noise {noise:g} seed {seed} {system}"
        if system == "setfit":
            checkpoints = checkpoint_folder(a, key, shots)
            lock = claim_run(checkpoints)
            if lock is None:
                print(f"{where}: skipped, another invocation is training it", flush=True)
                continue
            try:  # held from this check of runs.jsonl until the row is in it
                if key in {r["key"] for r in read_runs(runs_path) if r.get("settings") == want}:
                    print(f"{where}: skipped, another invocation has recorded it", flush=True)
                    continue
                res = run_setfit(task, shots, seed, a, checkpoints)
                record(key, task, shots_per_class, noise, seed, system, shots, res)
                shutil.rmtree(checkpoints, ignore_errors=True)
            finally:
                lock.release()
            continue
        if system == "logreg":
            res = run_logreg(task, shots, encoder)
        else:
            res = run_decone(task, shots_per_class, noise, seed, 0.9 if system == "scl" else 0.0, a, shots)
        record(key, task, shots_per_class, noise, seed, system, shots, res)
    rows = [r for r in read_runs(runs_path) if r.get("settings") == want]
    return rows


# ---------------------------------------------------------------------------------------------------------- report
def summarize(rows: list[dict]) -> list[dict]:
    """One row per (task, shots, noise, system): accuracy mean ± std, wall time, paired Δ to SetFit and to CE."""
    by = {}
    for r in rows:
        by.setdefault((r["task"], r["shots"], r["noise"]), {}).setdefault(r["system"], {})[r["seed"]] = r
    out = []
    for (task, shots, noise), systems in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        for system in SYSTEMS:
            if system not in systems:
                continue
            runs = systems[system]
            acc = [100 * runs[s]["accuracy"] for s in sorted(runs)]
            mean, std = C.mean_std(acc)
            row = {"task": task, "shots": shots, "noise": noise, "system": system, "n": len(acc), "mean": mean,
                   "std": std, "wall_s": statistics.median(runs[s]["wall_s"] for s in runs)}
            for ref in ("setfit", "ce"):
                if ref == system or ref not in systems:
                    continue
                seeds = sorted(set(runs) & set(systems[ref]))
                d = [100 * (runs[s]["accuracy"] - systems[ref][s]["accuracy"]) for s in seeds]
                if d:
                    ref_std = C.mean_std([100 * systems[ref][s]["accuracy"] for s in seeds])[1]
                    row[f"vs_{ref}"] = {"mean": float(np.mean(d)), "std": C.mean_std(d)[1],
                                        "wins": sum(x > 0 for x in d), "n": len(d),
                                        "verdict": C.seed_verdict(d, C.mean_std([100 * runs[s]["accuracy"] for s in seeds])[1],
                                                           ref_std)}
            out.append(row)
    return out


def _delta(d: dict | None) -> str:
    if not d:
        return ""
    spread = f" ± {d['std']:.2f}" if d["n"] > 1 else ""
    return f"{d['mean']:+.2f}{spread}; {d['wins']}/{d['n']}; {d['verdict']}"


def markdown(summary: list[dict]) -> list[str]:
    lines = ["| task | shots/class | noise | system | seeds | accuracy % (mean ± std) | Δ vs SetFit (paired; wins; verdict) "
             "| Δ vs decone CE (paired; wins; verdict) | wall s/run (median) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in summary:
        lines.append(f"| {r['task']} | {r['shots']} | {r['noise']:g} | {LABELS[r['system']]} | {r['n']} | "
                     f"{_accuracy(r)} | {_delta(r.get('vs_setfit'))} | {_delta(r.get('vs_ce'))} | "
                     f"{r['wall_s']:.1f} |")
    return lines


def _accuracy(r: dict) -> str:
    """mean ± std over seeds; one seed has no spread to show."""
    return f"{r['mean']:.2f} ± {r['std']:.2f}" if r["n"] > 1 else f"{r['mean']:.2f}"


def compact_markdown(summary: list[dict]) -> list[str]:
    """One row per (task, shots, noise), one column per system: accuracy mean ± std over the seeds, the best in bold
    (the README's table)."""
    cells = {}
    for r in summary:
        cells.setdefault((r["task"], r["shots"], r["noise"]), {})[r["system"]] = r
    lines = ["| task | shots/class | noise | " + " | ".join(LABELS[s] for s in SYSTEMS) + " |",
             "|---|---|---|" + "---|" * len(SYSTEMS)]
    for (task, shots, noise), by in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        most = max(r["n"] for r in by.values())  # a system on fewer seeds (a setting still being built) is shown
        best = max(r["mean"] for r in by.values() if r["n"] == most)  # with its count and not ranked
        row = []
        for s in SYSTEMS:
            r = by.get(s)
            if r is None:
                row.append("—")
            elif r["n"] < most:
                row.append(f"{_accuracy(r)} ({r['n']} of {most} seeds)")
            else:
                row.append(f"**{_accuracy(r)}**" if r["mean"] == best else _accuracy(r))
        lines.append(f"| {task} | {shots} | {noise:g} | " + " | ".join(row) + " |")
    return lines


def plain_words(summary: list[dict]) -> list[str]:
    """The two questions, answered from the verdicts: does CE + SCL beat CE, and does either beat SetFit?"""
    def tally(system: str, ref: str) -> str:
        cells = [r for r in summary if r["system"] == system and r.get(f"vs_{ref}")]
        if not cells:
            return "not measured"
        counts = {v: sum(r[f"vs_{ref}"]["verdict"] == v for r in cells) for v in ("better", "worse", "inside", "n/a")}
        return (f"better in {counts['better']}, worse in {counts['worse']}, inside the seed spread in "
                f"{counts['inside']}" + (f", one seed (no verdict) in {counts['n/a']}" if counts["n/a"] else "")
                + f" of {len(cells)} settings")
    walls = {system: statistics.median(r["wall_s"] for r in summary if r["system"] == system)
             for system in SYSTEMS if any(r["system"] == system for r in summary)}
    return [f"* decone CE+SCL against decone CE: {tally('scl', 'ce')}.",
            f"* decone CE against SetFit: {tally('ce', 'setfit')}.",
            f"* decone CE+SCL against SetFit: {tally('scl', 'setfit')}.",
            f"* frozen embeddings + logistic regression against SetFit: {tally('logreg', 'setfit')}.",
            "* wall time a run (training and scoring the test set; median over the settings of each setting's median): "
            + ", ".join(f"{LABELS[s]} {w:.1f} s" for s, w in walls.items()) + "."]


GRID = {"tasks": ("SST-2", "TREC"), "shots": (8, 16, 64), "noise": (0.0, 0.2, 0.4), "seeds": 5}  # the whole study


def coverage(summary: list[dict], grid: dict = GRID) -> str:
    """One sentence: which settings of the whole study (``GRID``) have every system on every seed, and which are
    missing or partial, so a table that lacks a setting says so instead of leaving it to the reader."""
    have = {}
    for r in summary:
        have.setdefault((r["task"], r["shots"], round(r["noise"], 6)), {})[r["system"]] = r["n"]
    cells = [(t, s, p) for t in grid["tasks"] for s in grid["shots"] for p in grid["noise"]]
    whole = [c for c in cells if all(have.get((c[0], c[1], round(c[2], 6)), {}).get(x, 0) >= grid["seeds"]
                                     for x in SYSTEMS)]
    rest = [c for c in cells if c not in whole]
    if not rest:
        return f"Every setting of the study ({len(cells)}) has all {len(SYSTEMS)} systems on {grid['seeds']} seeds."

    def name(c):
        got = have.get((c[0], c[1], round(c[2], 6)))
        if not got:
            return f"{c[0]} {c[1]}-shot noise {c[2]:g}"
        short = [f"{LABELS[x]} on {got.get(x, 0)} of {grid['seeds']} seeds" for x in SYSTEMS
                 if got.get(x, 0) < grid["seeds"]]
        return f"{c[0]} {c[1]}-shot noise {c[2]:g} (so far {', '.join(short)})"
    missing = [name(c) for c in rest if not have.get((c[0], c[1], round(c[2], 6)))]
    partial = [name(c) for c in rest if have.get((c[0], c[1], round(c[2], 6)))]
    return (f"{len(whole)} of the study's {len(cells)} settings ({'/'.join(grid['tasks'])} x "
            f"{'/'.join(map(str, grid['shots']))} shots x noise {'/'.join(f'{p:g}' for p in grid['noise'])}) have all "
            f"{len(SYSTEMS)} systems on {grid['seeds']} seeds"
            + (f"; partial: {'; '.join(partial)}" if partial else "")
            + (f"; not yet run: {', '.join(missing)}" if missing else "") + ".")


def plot(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in summary})
    noises = sorted({r["noise"] for r in summary})
    if not tasks:
        return
    fig, axes = plt.subplots(len(tasks), len(noises), figsize=(4 * len(noises), 3.2 * len(tasks)), squeeze=False,
                             sharey="row")
    for i, task in enumerate(tasks):
        for j, noise in enumerate(noises):
            ax = axes[i][j]
            for system in SYSTEMS:
                pts = sorted((r["shots"], r["mean"], r["std"]) for r in summary
                             if r["task"] == task and r["noise"] == noise and r["system"] == system)
                if pts:
                    x, y, e = zip(*pts)
                    ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=LABELS[system])
            ax.set_xscale("log", base=2)
            ax.set_title(f"{task}, label noise {noise:g}")
            ax.set_xlabel("shots per class")
            if j == 0:
                ax.set_ylabel("test accuracy %")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "(not installed)"


def threads_said(rows: list[dict]) -> str:
    """How many torch threads the runs had, which their wall times depend on."""
    counts = {}
    for r in rows:
        counts[r.get("threads")] = counts.get(r.get("threads"), 0) + 1
    parts = [f"{n} at {t} thread{'s' if t != 1 else ''}" for t, n in sorted((t, n) for t, n in counts.items() if t)]
    if counts.get(None):
        parts.append(f"{counts[None]} not recorded")
    return "Torch threads a run (wall times depend on them): " + ", ".join(parts) + "." if parts else ""


def machines_said(rows: list[dict]) -> str:
    """Which machines ran the runs (a grid is built over several sessions, not always on one CPU), by count."""
    counts = {}
    for r in rows:
        said = (f"{r['cpu']} (native bf16: {'yes' if r.get('native_bf16') else 'no'})" if r.get("cpu") else None)
        counts[said] = counts.get(said, 0) + 1
    parts = [f"{n} on {said}" for said, n in sorted((s, n) for s, n in counts.items() if s)]
    if counts.get(None):
        parts.append(f"{counts[None]} not recorded (runs from before machines were recorded: the commits that "
                     "added them name their machine)")
    return "Machines that ran them: " + "; ".join(parts) + "." if parts else ""


def report(rows: list[dict], out: Path, a) -> list[dict]:
    summary = summarize(rows)
    total_min = sum(r["wall_s"] for r in rows) / 60
    m = C.machine()
    head = [f"# Few-shot classification: decone against SetFit ({MODEL_NAMES.get(a.model, Path(a.model).name)})", "",
            f"{len(rows)} runs, {total_min:.1f} min of run time. "
            + (f"{machines} " if (machines := machines_said(rows)) else "")
            + f"Report written on {m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']}, "
            f"Python {platform.python_version()}. decone CE / CE+SCL: {a.epochs} epochs, batch {a.batch_size}, "
            f"lr {a.lr:g}, temperature 0.3. SetFit {_version('setfit')}: "
            + ("its defaults (oversampling)" if a.setfit_iterations is None else f"num_iterations={a.setfit_iterations}")
            + "." + (f" {threads}" if (threads := threads_said(rows)) else ""), ""]
    text = head + markdown(summary) + [""] + plain_words(summary) + ["", coverage(summary), ""]
    (out / "summary.md").write_text("\n".join(text))
    (out / "summary.json").write_text(json.dumps({"intro": head[2:-1], "summary": summary}, indent=1) + "\n")
    plot(summary, out / "accuracy_vs_shots.png")
    print("\n".join(text))
    return summary


def main(argv=None) -> None:
    a = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    if a.report_only:
        rows = [r for r in read_runs(out / "runs.jsonl") if r.get("settings") == settings(a)]
    else:
        rows = run_grid(a)
    report(rows, out, a)


if __name__ == "__main__":
    main()
