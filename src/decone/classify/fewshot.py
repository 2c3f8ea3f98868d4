"""The few-shot / label-noise protocol of Gunel et al. (2021, sections 5.2-5.3) for CE vs CE + SCL fine-tuning.

For each setting (shots N, noise fraction p, lambda) and seed s:

1. sample a class-balanced training set of N examples from the task's training pool (N // C per class, the
   remainder to randomly chosen classes); the sample depends on (s, N) only, so runs that differ in p or lambda see
   the same sentences and the comparison is paired;
2. flip exactly ``round(p * N)`` of its labels, chosen uniformly, each to a uniformly chosen OTHER class (depends on
   (s, N, p) only: CE and CE + SCL see the same noisy labels);
3. fine-tune a fresh copy of the model with :func:`decone.train.fit` (method ``scl`` with that lambda; lambda = 0 is
   plain cross-entropy), in a temporary folder;
4. reload the saved classifier and measure accuracy on the task's (fixed) test set.

One JSON line per finished run goes to ``runs.jsonl`` in the output folder; a rerun skips the runs already there, so
an interrupted grid resumes where it stopped. The settings that change results (model, lr, epochs, ...) are kept in
``fewshot.json`` and a rerun with other settings is refused (use another folder, or ``--overwrite``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, runs side by side are then the user's risk
    fcntl = None

import numpy as np

from decone.errors import ConfigError, DataError

RUNS_FILE = "runs.jsonl"
CONFIG_FILE = "fewshot.json"
RESULTS_FILE = "results.md"
FEATURES_DIR = "features"
#: Settings that change the results; a resumed grid must keep them.
LEGACY_SETTINGS = {"head_init": "random"}  # what a grid written before a setting existed ran with
RESULT_SETTINGS = ("task", "model", "epochs", "max_steps", "batch_size", "lr", "temperature", "max_length", "pooling",
                   "warmup_ratio", "test_size", "bf16", "head_init")


@dataclass
class FewShotConfig:
    """A few-shot grid. ``seeds`` is a count: seeds 0 .. seeds-1."""

    task: str
    model: str
    output: str
    shots: list[int] = field(default_factory=lambda: [20, 100, 1000])
    seeds: int = 5
    noise: list[float] = field(default_factory=lambda: [0.0])
    lambdas: list[float] = field(default_factory=lambda: [0.0, 0.9])
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 16
    lr: float = 2e-5
    temperature: float = 0.3
    max_length: int = 64
    pooling: str | None = None
    warmup_ratio: float = 0.0
    test_size: int = 0
    bf16: bool | None = None
    data_dir: str | None = None
    feature_seeds: int = 1
    head_init: str = "probe"  # the linear head's start: a logistic-regression probe, or "random" (the paper's)
    overwrite: bool = False

    def validate(self) -> None:
        from decone.classify.scl import check_lambda

        if not self.shots or any(s < 2 for s in self.shots):
            raise ConfigError(f"--shots must be a list of integers >= 2, got {self.shots}")
        if self.seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {self.seeds}")
        from decone.classify.scl import check_head_init

        check_head_init(self.head_init, "--head-init")
        if not self.noise or any(not 0.0 <= p < 1.0 for p in self.noise):
            raise ConfigError(f"--noise must be fractions in [0, 1), got {self.noise}")
        if not self.lambdas:
            raise ConfigError("--lambda needs at least one value")
        for lam in self.lambdas:
            check_lambda(lam)
        if self.epochs < 1:
            raise ConfigError(f"--epochs must be >= 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"--max-steps must be >= 1, got {self.max_steps}")
        if self.batch_size < 2:
            raise ConfigError(f"--batch-size must be >= 2, got {self.batch_size}")
        for flag, value in (("--lr", self.lr), ("--temperature", self.temperature)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{flag} must be a finite number > 0, got {value}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_length < 2:
            raise ConfigError(f"--max-length must be >= 2, got {self.max_length}")
        if self.pooling is not None:
            from decone import POOLINGS

            if self.pooling not in POOLINGS:
                raise ConfigError(f"--pooling {self.pooling!r} unknown; choose one of {', '.join(POOLINGS)}")
        if self.test_size < 0:
            raise ConfigError(f"--test-size must be >= 0 (0: the whole test set), got {self.test_size}")


# ---------------------------------------------------------------------------------------------------------- sampling
def sample_balanced(labels: Sequence[str], classes: Sequence[str], shots: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a class-balanced sample of ``shots`` examples: ``shots // C`` per class, the remainder to randomly
    chosen classes (one extra each). Sorted.

    Raises:
        ConfigError: fewer than 2 shots per class (the contrastive term needs a positive).
        DataError: a class has fewer examples than it needs.
    """
    labels = np.asarray(labels)
    c = len(classes)
    if shots < 2 * c:
        raise ConfigError(f"{shots} shots for {c} classes: need at least 2 per class ({2 * c})")
    per = np.full(c, shots // c)
    per[rng.permutation(c)[: shots % c]] += 1
    chosen = []
    for k, name in enumerate(classes):
        idx = np.flatnonzero(labels == name)
        if len(idx) < per[k]:
            raise DataError(f"class {name!r} has {len(idx)} training examples; {per[k]} needed for {shots} shots")
        chosen.append(rng.choice(idx, size=per[k], replace=False))
    return np.sort(np.concatenate(chosen))


def flip_labels(labels: Sequence[str], fraction: float, classes: Sequence[str],
                rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Flip exactly ``round(fraction * N)`` labels (half up), chosen uniformly without replacement, each to a class
    drawn uniformly from the OTHER classes. -> (new labels, sorted flipped indices)."""
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"noise fraction must be in [0, 1], got {fraction}")
    classes = list(classes)
    if len(classes) < 2:
        raise ConfigError("label noise needs at least 2 classes")
    n = len(labels)
    n_flip = int(math.floor(fraction * n + 0.5))
    flipped = np.sort(rng.choice(n, size=n_flip, replace=False)) if n_flip else np.zeros(0, dtype=np.int64)
    out = list(labels)
    for i in flipped:
        others = [c for c in classes if c != out[i]]
        out[i] = others[int(rng.integers(len(others)))]
    return out, flipped


def draw_shots(pool_labels: Sequence[str], classes: Sequence[str], shots: int, noise: float,
               seed: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Steps 1-2 of the protocol: the sampled pool indices (sorted), their labels after the noise, and which of them
    were flipped. A pure function of (seed, shots) for the sample and (seed, shots, noise) for the flips, so every
    system compared on a setting sees the same sentences and labels."""
    sample = sample_balanced(pool_labels, classes, shots, np.random.default_rng([seed, shots, 1]))
    gold = [pool_labels[i] for i in sample]
    noisy, flipped = flip_labels(gold, noise, classes, np.random.default_rng([seed, shots, int(round(noise * 1e6)), 2]))
    return sample, noisy, flipped


# ---------------------------------------------------------------------------------------------------------- one run
def run_key(row: dict) -> tuple:
    return (int(row["shots"]), round(float(row["noise"]), 6), round(float(row["lambda"]), 6), int(row["seed"]))


def train_and_evaluate(cfg: FewShotConfig, pool: list, test: list, classes: list[str], shots: int, noise: float,
                       lam: float, seed: int, features_path: Path | None = None) -> dict:
    """One run of the protocol (steps 1-4 above). -> its result row."""
    from rich.console import Console

    from decone.classify.model import Classifier
    from decone.data import Dataset
    from decone.train import Interrupted, TrainConfig, fit

    t0 = time.perf_counter()
    sample, noisy, flipped = draw_shots([y for _, y in pool], classes, shots, noise, seed)
    texts = [pool[i][0] for i in sample]
    data = Dataset([(t,) for t in texts], f"{cfg.task} {shots}-shot (noise {noise}, seed {seed})", labels=noisy,
                   label_names=list(classes))  # the task's classes, even if noise left one out of the sample

    tmp = Path(tempfile.mkdtemp(prefix="decone-fewshot-"))
    try:
        values = dict(method="scl", model=cfg.model, output=str(tmp / "model"), epochs=cfg.epochs,
                      max_steps=cfg.max_steps, batch_size=cfg.batch_size, lr=cfg.lr, temperature=cfg.temperature,
                      max_length=cfg.max_length, pooling=cfg.pooling, seed=seed, bf16=cfg.bf16,
                      warmup_ratio=cfg.warmup_ratio, save_every=1_000_000, log_every=1_000_000, overwrite=True,
                      scl_lambda=lam, options={"head_init": cfg.head_init})
        quiet = Console(file=io.StringIO())
        t_train = time.perf_counter()
        try:
            summary = fit(TrainConfig(**values), data=data, console=quiet)
        except Interrupted:
            raise Interrupted("interrupted; the finished runs are kept in runs.jsonl: rerun the same command to "
                              "continue") from None
        train_s = time.perf_counter() - t_train
        clf = Classifier.load(tmp / "model")
        t_eval = time.perf_counter()
        features = clf.features([t for t, _ in test], batch_size=128, bf16=cfg.bf16, show_progress=False)
        probs = clf.probabilities_from_features(features)
        pred = probs.argmax(axis=1)
        y_test = clf.label_indices([y for _, y in test], source=f"{cfg.task} test set")
        accuracy = float((pred == y_test).mean())
        eval_s = time.perf_counter() - t_eval
        if features_path is not None:
            features_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(features_path, features.astype(np.float16))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "task": cfg.task, "shots": shots, "noise": noise, "lambda": lam, "seed": seed,
        "accuracy": round(accuracy, 6), "n_train": len(texts), "n_flipped": int(len(flipped)), "n_test": len(test),
        "steps": summary["steps"], "final_loss": summary["final_loss"],
        "train_s": round(train_s, 2), "eval_s": round(eval_s, 2), "wall_s": round(time.perf_counter() - t0, 2),
    }


# ---------------------------------------------------------------------------------------------------------- the grid
@contextlib.contextmanager
def _locked(f, exclusive: bool = True):
    """An advisory lock on an open runs file (exclusive to append or cut, shared to read), so that invocations side
    by side (``--only-seeds``) never read another's half-written line as torn, nor interleave their appends. No-op
    where ``fcntl`` is missing."""
    if fcntl is None:
        yield
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    try:
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _parse_runs(raw: bytes) -> tuple[list[dict], int | None]:
    """The rows of a runs file, and where a torn tail begins (None if there is none). A torn tail is an unparsable
    last line without a newline (a crash while writing); an unparsable line with a newline is skipped, so that the
    rows after it are kept."""
    rows, start = [], 0
    while start < len(raw):
        end = raw.find(b"\n", start)
        line = raw[start:] if end < 0 else raw[start:end]
        if line.strip():
            try:
                rows.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                if end < 0:
                    return rows, start
        start = len(raw) if end < 0 else end + 1
    return rows, None


def read_runs(path: Path) -> list[dict]:
    """Finished runs, one JSON object a line; a torn tail (a crash while writing) is cut from the file. Reading
    needs no write access unless there is a tail to cut."""
    if not path.exists():
        return []
    with open(path, "rb") as f, _locked(f, exclusive=False):
        rows, torn = _parse_runs(f.read())
    if torn is None:
        return rows
    with open(path, "r+b") as f, _locked(f):
        rows, torn = _parse_runs(f.read())  # again under the exclusive lock: the file may have grown meanwhile
        if torn is not None:
            f.truncate(torn)
    return rows


def append_run(path: Path, row: dict) -> None:
    """Append one finished run as one line, under the lock :func:`read_runs` takes, and fsync it. A last line
    without its newline (a hand edit, a merge) gets one first, so that the row never joins it."""
    with open(path, "a+b") as f, _locked(f):
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write((json.dumps(row) + "\n").encode())
        f.flush()
        os.fsync(f.fileno())


def _check_settings(out: Path, settings: dict, overwrite: bool) -> None:
    path = out / CONFIG_FILE
    if overwrite:
        for name in (RUNS_FILE, CONFIG_FILE, RESULTS_FILE):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / FEATURES_DIR, ignore_errors=True)
    elif path.exists():
        old = json.loads(path.read_text())
        for key in RESULT_SETTINGS:
            if old.get(key, LEGACY_SETTINGS.get(key)) != settings.get(key):
                raise ConfigError(f"{out}: holds runs with {key}={old.get(key)!r}, now {settings.get(key)!r}; "
                                  "use another --output or pass --overwrite")
    elif (out / RUNS_FILE).exists():
        raise ConfigError(f"{out}: has {RUNS_FILE} but no {CONFIG_FILE}; use another --output or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")


def _separator(model: str) -> str:
    """The model's separator token, to join sentence pairs (``[SEP]`` for BERT, ``</s>`` for RoBERTa)."""
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model).sep_token or "[SEP]"
    except Exception:  # the real load reports a bad model path properly
        return "[SEP]"


def feature_file(out: Path, shots: int, noise: float, lam: float, seed: int) -> Path:
    return out / FEATURES_DIR / f"shots{shots}_noise{noise:g}_lambda{lam:g}_seed{seed}.npy"


def run_grid(cfg: FewShotConfig, log: Callable[[str], None] = print) -> list[dict]:
    """Run every (shots, noise, lambda, seed) not yet in ``runs.jsonl``. -> all rows of this grid.

    An output folder this call created is removed again where it fails before a run has finished."""
    from decone.errors import check_output_dir

    cfg.validate()
    out = Path(cfg.output)
    check_output_dir(out, overwrite=True)  # an earlier grid's folder is resumed
    created = not out.exists()
    try:
        return _run_grid(cfg, out, log)
    except BaseException:
        if created and not (out / RUNS_FILE).exists():
            shutil.rmtree(out, ignore_errors=True)
        raise


def _run_grid(cfg: FewShotConfig, out: Path, log: Callable[[str], None]) -> list[dict]:
    from decone.classify.tasks import canonical_task, fewshot_splits, load_task

    cfg.task = canonical_task(cfg.task)
    task = load_task(cfg.task, cfg.data_dir, separator=_separator(cfg.model) if cfg.task == "MRPC" else "[SEP]")
    pool, test = fewshot_splits(task, cfg.test_size)
    if not test:
        raise DataError(f"{cfg.task}: the test set is empty")
    classes = list(task["labels"])
    unknown = sorted({y for _, y in test} - set(classes))
    if unknown:
        raise DataError(f"{cfg.task} test set: labels {unknown} are not among the training classes {classes}")
    settings = {k: getattr(cfg, k) for k in RESULT_SETTINGS}
    _check_settings(out, settings, cfg.overwrite)
    (out / FEATURES_DIR).mkdir(exist_ok=True)
    labels_file = out / FEATURES_DIR / "test_labels.json"
    if not labels_file.exists():
        labels_file.write_text(json.dumps({"task": cfg.task, "classes": classes, "labels": [y for _, y in test]}) + "\n")

    runs_path = out / RUNS_FILE
    done = {run_key(r): r for r in read_runs(runs_path)}
    grid = [(s, p, lam, seed) for s in cfg.shots for p in cfg.noise for seed in range(cfg.seeds) for lam in cfg.lambdas]
    todo = [g for g in grid if run_key(dict(shots=g[0], noise=g[1], **{"lambda": g[2]}, seed=g[3])) not in done]
    log(f"{cfg.task}: pool {len(pool):,} training examples, test {len(test):,}, {len(classes)} classes; "
        f"{len(grid)} runs, {len(grid) - len(todo)} already done")
    seconds: dict[int, list[float]] = {}
    for k, (shots, noise, lam, seed) in enumerate(todo, start=1):
        fpath = feature_file(out, shots, noise, lam, seed) if seed < cfg.feature_seeds else None
        row = train_and_evaluate(cfg, pool, test, classes, shots, noise, lam, seed, fpath)
        append_run(runs_path, row)
        done[run_key(row)] = row
        seconds.setdefault(shots, []).append(row["wall_s"])
        log(f"[{k}/{len(todo)}] shots {shots}, noise {noise:g}, lambda {lam:g}, seed {seed}: accuracy "
            f"{100 * row['accuracy']:.2f} ({row['steps']} steps, {row['wall_s']:.1f} s; "
            f"~{_eta(seconds, [g[0] for g in todo[k:]]) / 60:.1f} min left)")
    return [done[run_key(dict(shots=s, noise=p, **{"lambda": lam}, seed=seed))] for s, p, lam, seed in grid]


def _eta(seconds: dict[int, list[float]], remaining: Sequence[int]) -> float:
    """Seconds left: the mean time of finished runs of the same size, else scaled from the nearest size seen."""
    means = {s: float(np.mean(v)) for s, v in seconds.items()}
    total = 0.0
    for shots in remaining:
        if shots in means:
            total += means[shots]
        else:
            near = min(means, key=lambda s: abs(math.log(s / shots)))
            total += means[near] * max(1.0, shots / near)
    return total


# ---------------------------------------------------------------------------------------------------------- summaries
def summarize(rows: Sequence[dict]) -> list[dict]:
    """One row per (shots, noise, lambda): runs, mean and std (ddof=1) of accuracy, and the paired difference to
    lambda = 0 over the seeds both have (mean and std of the per-seed differences)."""
    groups: dict[tuple, dict[int, float]] = {}
    for r in rows:
        key = (int(r["shots"]), float(r["noise"]), float(r["lambda"]))
        groups.setdefault(key, {})[int(r["seed"])] = float(r["accuracy"])
    out = []
    for (shots, noise, lam), by_seed in sorted(groups.items()):
        acc = np.array(list(by_seed.values()))
        row = {"shots": shots, "noise": noise, "lambda": lam, "runs": len(acc), "mean": float(acc.mean()),
               "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0, "delta": None, "delta_std": None}
        base = groups.get((shots, noise, 0.0))
        if lam != 0.0 and base:
            common = sorted(set(base) & set(by_seed))
            if common:
                d = np.array([by_seed[s] - base[s] for s in common])
                row["delta"] = float(d.mean())
                row["delta_std"] = float(d.std(ddof=1)) if len(d) > 1 else 0.0
                row["delta_wins"] = int((d > 0).sum())
                row["delta_n"] = len(d)
        out.append(row)
    return out


def _mean_std(mean: float, std: float, n: int, sign: str = "") -> str:
    """In percent: ``mean ± std``, or the mean alone for a single run (no spread to report)."""
    text = f"{100 * mean:{sign}.2f}"
    return text if n < 2 else f"{text} ± {100 * std:.2f}"


def _loss_name(lam: float) -> str:
    return "CE" if lam == 0 else f"CE+SCL (λ={lam:g})"


def markdown_table(summary: Sequence[dict], task: str) -> str:
    lines = ["| task | shots | noise | loss | runs | accuracy % (mean ± std) | Δ vs CE, paired (mean ± std; wins) |",
             "|---|---|---|---|---|---|---|"]
    for r in summary:
        delta = "" if r["delta"] is None else \
            f"{_mean_std(r['delta'], r['delta_std'], r['delta_n'], '+')}; {r['delta_wins']}/{r['delta_n']}"
        lines.append(f"| {task} | {r['shots']} | {r['noise']:g} | {_loss_name(r['lambda'])} | {r['runs']} | "
                     f"{_mean_std(r['mean'], r['std'], r['runs'])} | {delta} |")
    return "\n".join(lines) + "\n"


def rich_table(summary: Sequence[dict], task: str):
    from rich.table import Table

    table = Table(title=f"{task}: few-shot accuracy (%), mean ± std over seeds")
    for name in ("shots", "noise", "loss", "runs", "accuracy", "Δ vs CE (paired)"):
        table.add_column(name, justify="left" if name == "loss" else "right")
    for r in summary:
        delta = "" if r["delta"] is None else \
            f"{_mean_std(r['delta'], r['delta_std'], r['delta_n'], '+')} ({r['delta_wins']}/{r['delta_n']})"
        table.add_row(str(r["shots"]), f"{r['noise']:g}", _loss_name(r["lambda"]), str(r["runs"]),
                      _mean_std(r["mean"], r["std"], r["runs"]), delta)
    return table


def write_results(out: Path, cfg: FewShotConfig, rows: Sequence[dict], command: str | None = None) -> Path:
    """``results.md``: the settings, the table and the total run time."""
    summary = summarize(rows)
    wall = sum(float(r.get("wall_s", 0.0)) for r in rows)
    n_test = rows[0]["n_test"] if rows else 0
    text = [f"# Few-shot fine-tuning, {cfg.task}: CE vs CE + SCL (Gunel et al. 2021)", ""]
    if command:
        text += ["```", command, "```", ""]
    text += [f"model `{cfg.model}`; epochs {cfg.epochs}" + (f", max steps {cfg.max_steps}" if cfg.max_steps else "") +
             f", batch {cfg.batch_size}, lr {cfg.lr:g}, temperature {cfg.temperature:g}, max length {cfg.max_length}; "
             f"test examples {n_test}; {len(rows)} runs, {wall / 60:.1f} min of run time.", "",
             markdown_table(summary, cfg.task)]
    path = out / RESULTS_FILE
    path.write_text("\n".join(text))
    return path
