"""``decone sweep``: train every point of a hyper-parameter grid and watch STS and isotropy move.

    decone sweep simcse --model M --data F --grid temperature=0.01,0.05,0.1 --grid pooling=cls,mean --seeds 3

Grids with several axes make the full product. Each (point, seed) trains with :func:`decone.train.fit`, then is
probed on a fixed seeded set of STS-B dev pairs: dev Spearman, average cosine, IsoScore, alignment, uniformity.
One row per finished run goes to ``sweep.jsonl``; rerunning the command skips finished runs (resume), and a grid axis
may gain values. The fixed settings (method, model, data, ``--set`` values, probe, axes) are kept in
``sweep_settings.json``: a rerun with others into the same folder is refused rather than mixed in. ``sweep.md``
and plots (each metric against each parameter with error bars over seeds; STS against anisotropy over all runs)
are rewritten after every run.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from decone.errors import ConfigError, check_output_dir

METRICS = (
    ("probe_dev_spearman", "STS-B dev Spearman x100"),
    ("probe_avg_cosine", "avg cosine of random pairs"),
    ("probe_isoscore", "IsoScore"),
    ("probe_alignment", "alignment"),
    ("probe_uniformity", "uniformity"),
)


def parse_grid(specs: Sequence[str]) -> dict[str, list]:
    """``["temperature=0.01,0.05", "pooling=cls,mean"]`` -> ``{"temperature": [0.01, 0.05], "pooling": [...]}``."""
    from decone.train.config import parse_value, setting_types

    types = setting_types()
    grid: dict[str, list] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ConfigError(f"--grid {spec!r}: expected NAME=V1,V2,...")
        if key == "seed":
            raise ConfigError(f"--grid {spec!r}: seeds are not a grid axis; use --seeds N (and --seed for the first)")
        if key not in types or key in ("method", "model", "data", "output", "resume", "overwrite"):
            raise ConfigError(f"--grid {spec!r}: {key!r} is not a training setting that can be swept")
        grid[key] = [parse_value(types[key], v, f"--grid {key}") for v in values.split(",") if v.strip()]
    if not grid:
        raise ConfigError("give at least one --grid NAME=V1,V2,...")
    return grid


def run_id(point: dict, seed: int) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items()) + f",seed={seed}"


SETTINGS_FILE = "sweep_settings.json"


def _path_id(value: str | None) -> str | None:
    """A model or data path as the file it names (so another spelling of it is the same sweep); a hub name as is."""
    import os

    return os.path.realpath(value) if value and os.path.exists(value) else value


def _check_settings(out: Path, fixed: dict) -> None:
    """A sweep folder holds runs of one set of fixed settings: rerunning it resumes (a grid axis may gain values),
    anything else would mix rows trained otherwise into one table."""
    path = out / SETTINGS_FILE
    if not path.exists():  # no finished run yet (or a sweep from before this file: its settings are taken as given)
        return
    try:
        saved = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    saved = json.loads(json.dumps(saved))
    for key, value in json.loads(json.dumps(fixed)).items():
        if saved.get(key) != value:
            raise ConfigError(f"{out}: holds a sweep with {key} {saved.get(key)!r}, now {value!r}; rerun it as it "
                              "was (to resume or add grid values) or use another --output")


def _write_settings(out: Path, fixed: dict) -> None:
    path = out / SETTINGS_FILE
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(fixed, indent=1) + "\n")
        tmp.replace(path)


def sweep(
    method: str,
    model: str,
    data: str | None,
    grid: dict[str, list],
    output: str | Path,
    seeds: int = 1,
    base: dict | None = None,
    probe_pairs: int = 400,
    keep_models: bool = False,
    console=None,
    sentences: int | None = None,
    dynamics: int = 0,
) -> list[dict]:
    """Run the grid; returns every row of ``sweep.jsonl`` (earlier runs included). ``sentences``: every run sees
    this many examples (``max_steps`` = sentences // batch size), so that a batch-size axis compares equal data.
    ``dynamics``: probe each run that many times while it trains (every ``max_steps // dynamics`` steps, plus the
    untrained model and the last step) into the row's ``dynamics`` (step, examples seen, the metrics), plotted
    against examples seen in ``sweep_dynamics.png``."""
    from decone.diagnostics.dynamics import DynamicsCallback, default_probe
    from decone.encoder import Encoder
    from decone.train import TrainConfig, fit

    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    check_output_dir(output, overwrite=True)
    out = Path(output)
    base = dict(base or {})
    probe_data = base.pop("eval_data", None)  # the probe, not model selection: every run keeps its last step
    if sentences is not None:
        if sentences < 2 or "max_steps" in base or "max_steps" in grid:
            raise ConfigError("--sentences needs a value >= 2 and takes the place of --max-steps")
    if dynamics < 0:
        raise ConfigError(f"--dynamics must be >= 0, got {dynamics}")
    if dynamics and sentences is None and "max_steps" not in base:
        raise ConfigError("--dynamics spreads its probes over a run's steps: give --max-steps or --sentences")
    clash = sorted(set(base) & set(grid))
    if clash:
        raise ConfigError(f"{', '.join(clash)}: both a fixed setting and a --grid axis; give it in one place")
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    for point in points:  # every point checked before the first run, not a bad value part way through
        TrainConfig(method=method, model=model, data=data, output=str(out), **base, **point).resolved()
    fixed = {"method": method, "model": _path_id(model), "data": _path_id(data), "base": base,
             "probe_pairs": probe_pairs, "probe_data": _path_id(probe_data), "sentences": sentences,
             "dynamics": dynamics, "axes": list(grid)}
    _check_settings(out, fixed)
    probe_texts, dev_pairs = default_probe(probe_pairs, 0, probe_data)
    probe = DynamicsCallback(0, probe_texts, dev_pairs, plot=False)
    made = [p for p in (out, *out.parents) if not p.exists()]  # the folders this sweep creates (outermost last)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "sweep.jsonl"
    try:
        rows = _read_rows(log)
        done = {r["id"] for r in rows}
        todo = [(p, s) for p in points for s in range(seeds) if run_id(p, s) not in done]
        _say(console, f"sweep: {len(points)} grid points x {seeds} seeds = {len(points) * seeds} runs, {len(todo)} to do")
        for number, (point, seed) in enumerate(todo, start=1):
            rid = run_id(point, seed)
            run_dir = out / "runs" / rid.replace(",", "_").replace("=", "-")
            _say(console, f"[{number}/{len(todo)}] {rid}")
            settings = {**base, **point, "seed": base.get("seed", 42) + seed, "overwrite": True}
            batch = TrainConfig(method=method, model=model, **settings).resolved().batch_size
            if sentences is not None:
                if batch is None:
                    raise ConfigError(f"--sentences: {method} runs in stages with batch sizes of their own; give --max-steps")
                settings["max_steps"] = max(1, sentences // batch)
            cfg = TrainConfig(method=method, model=model, data=data, output=str(run_dir), **settings)
            tracker = DynamicsCallback(max(1, settings["max_steps"] // dynamics), probe_texts, dev_pairs, plot=False) \
                if dynamics else None
            t0 = time.perf_counter()
            summary = fit(cfg, callbacks=[tracker] if tracker else (), console=console)
            encoder = Encoder.load(run_dir)
            row = {"id": rid, **point, "seed": seed, **probe.probe(encoder), "final_loss": summary["final_loss"],
                   "steps": summary["steps"],
                   "train_seconds": round(time.perf_counter() - t0, 1), "sentences_per_s": summary["sentences_per_s"]}
            if tracker:
                row["dynamics"] = [{"step": h["step"], "examples": h["step"] * (batch or 0),
                                    **{k: h[k] for k, _ in METRICS if k in h}} for h in tracker.history]
            if not keep_models:
                shutil.rmtree(run_dir, ignore_errors=True)
            with open(log, "a") as f:
                f.write(json.dumps(row) + "\n")
            _write_settings(out, fixed)  # once a run is in: a sweep that failed before its first run can be corrected
            rows.append(row)
            write_report(rows, list(grid), out)
        write_report(rows, list(grid), out)
    except BaseException:
        # failed before anything was kept (bad data, a crash before the first checkpoint): leave no empty folders.
        # A checkpoint of an interrupted run, a kept model or a finished run's row are files: the folder stays.
        if made and not any(f.is_file() for f in out.rglob("*")):
            shutil.rmtree(made[-1], ignore_errors=True)
        raise
    return rows


def _read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line cut by a kill: that run is redone
    return rows


def _say(console, message: str) -> None:
    if console is not None:
        console.print(message, highlight=False)


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def aggregate(rows: list[dict], axes: list[str]) -> list[dict]:
    """One entry per grid point: mean and std over seeds of each metric."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(a) for a in axes), []).append(r)
    out = []
    for key, members in groups.items():
        entry = dict(zip(axes, key), seeds=len(members))
        for metric, _ in METRICS:
            entry[metric] = _mean_std([m.get(metric) for m in members])
        out.append(entry)
    return out


def write_report(rows: list[dict], axes: list[str], out: Path) -> None:
    """``sweep.md`` and the plots."""
    agg = aggregate(rows, axes)
    spread = "Mean ± std over seeds" if any(e["seeds"] > 1 for e in agg) else "One seed a point (no spread to report)"
    lines = ["# decone sweep", "", f"{len(rows)} runs. {spread}; probe: seeded STS-B dev pairs.", "",
             "| " + " | ".join(axes) + " | seeds | " + " | ".join(label for _, label in METRICS) + " |",
             "|" + "---|" * (len(axes) + 1 + len(METRICS))]
    for e in agg:
        cells = [str(e[a]) for a in axes] + [str(e["seeds"])]
        cells += [("—" if not math.isfinite(m) else f"{m:.3f}" if e["seeds"] < 2 else f"{m:.3f} ± {s:.3f}")
                  for m, s in (e[k] for k, _ in METRICS)]
        lines.append("| " + " | ".join(cells) + " |")
    (out / "sweep.md").write_text("\n".join(lines) + "\n")
    plot_sweep(rows, agg, axes, out)


def plot_sweep(rows: list[dict], agg: list[dict], axes: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for axis in axes:
        others = [a for a in axes if a != axis]
        fig, panels = plt.subplots(1, 3, figsize=(14, 4.2))
        for panel, (metric, label) in zip(panels, METRICS[:3]):
            series: dict[tuple, list[dict]] = {}
            for e in agg:
                series.setdefault(tuple(e[o] for o in others), []).append(e)
            for key, entries in series.items():
                entries.sort(key=lambda e: (isinstance(e[axis], str), e[axis]))
                xs = [str(e[axis]) if isinstance(e[axis], str) else e[axis] for e in entries]
                means = [e[metric][0] for e in entries]
                stds = [e[metric][1] for e in entries]
                name = ", ".join(f"{o}={v}" for o, v in zip(others, key)) or None
                panel.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=name)
            panel.set_xlabel(axis)
            panel.set_ylabel(label)
            panel.set_title(f"{label} vs {axis}", fontsize=10)
            numeric = all(not isinstance(e[axis], str) for e in agg)
            if axis in ("temperature", "lr") and numeric:
                panel.set_xscale("log")
            elif axis in ("batch_size", "mini_batch_size") and numeric:  # powers of two: evenly spaced, labelled
                values = sorted({e[axis] for e in agg})
                panel.set_xscale("log", base=2)
                panel.set_xticks(values, [str(v) for v in values])
            panel.grid(alpha=0.3)
        if others:
            panels[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"sweep_{axis}.png", dpi=110)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    xs = [r.get("probe_avg_cosine") for r in rows]
    ys = [r.get("probe_dev_spearman") for r in rows]
    ax.scatter(xs, ys, alpha=0.8)
    for r, x, y in zip(rows, xs, ys):
        if x is not None and y is not None:
            ax.annotate(",".join(str(r.get(a)) for a in axes), (x, y), fontsize=6, alpha=0.7,
                        xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("anisotropy: avg cosine of random pairs (0 = isotropic)")
    ax.set_ylabel("STS-B dev Spearman x100")
    ax.set_title("STS vs anisotropy, every run\n(labels: " + ", ".join(axes) + ")", fontsize=10)
    ax.margins(x=0.25)  # room for the point labels on the right
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "sweep_sts_vs_anisotropy.png", dpi=110)
    plt.close(fig)
    plot_dynamics(rows, axes, out / "sweep_dynamics.png")


def plot_dynamics(rows: list[dict], axes: list[str], path: Path, most: int = 6) -> bool:
    """STS-B dev and the average cosine against examples seen, one line per grid point (its first seed), for the
    runs probed while training (``--dynamics``); with more than ``most`` points, the grid's first and last only
    (e.g. the smallest and largest batch). False where no run has dynamics (nothing written)."""
    runs = [r for r in rows if r.get("dynamics") and r.get("seed", 0) == min(x.get("seed", 0) for x in rows)]
    if not runs:
        return False
    if len(runs) > most:
        runs = [runs[0], runs[-1]]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, panels = plt.subplots(1, 2, figsize=(11, 4))
    for r in runs:
        label = ", ".join(f"{a}={r.get(a)}" for a in axes)
        for panel, (metric, _) in zip(panels, METRICS[:2]):
            points = [(d["examples"], d[metric]) for d in r["dynamics"] if metric in d]
            panel.plot(*zip(*points), marker="o", label=label)
    for panel, (_, name) in zip(panels, METRICS[:2]):
        panel.set_xlabel("examples seen")
        panel.set_ylabel(name)
        panel.grid(alpha=0.3)
    panels[0].legend(fontsize=8)
    fig.suptitle("learning dynamics: " + ", ".join(axes))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def register(app) -> None:
    import typer

    @app.command("sweep", help="Train every point of a grid (--grid NAME=V1,V2 ...; several axes: full product) and "
                               "record STS-B dev and isotropy per point; resumes where it stopped.")
    def sweep_command(
        method: str = typer.Argument(..., help="a training method, e.g. simcse"),
        model: str = typer.Option(..., "--model", "-m", help="model folder or hub name"),
        data: Optional[str] = typer.Option(None, "--data", "-d", help="training data"),
        grid: list[str] = typer.Option(..., "--grid", help="NAME=V1,V2,... (repeatable)"),
        output: str = typer.Option("runs/sweep", "--output", "-o", help="sweep folder (sweep.jsonl, sweep.md, plots)"),
        max_steps: Optional[int] = typer.Option(None, help="steps per run"),
        sentences: Optional[int] = typer.Option(None, help="examples per run instead of --max-steps: steps = this // batch size (a batch-size axis then sees equal data)"),
        seeds: int = typer.Option(1, help="seeds per grid point"),
        seed: int = typer.Option(42, help="first seed"),
        eval_data: Optional[str] = typer.Option(None, help="probe pairs (s1, s2, score) [STS-B dev]"),
        probe_pairs: int = typer.Option(400, help="probe pairs per evaluation"),
        keep_models: bool = typer.Option(False, "--keep-models", help="keep each run's model folder"),
        dynamics: int = typer.Option(0, help="probe each run this many times while it trains and plot the learning "
                                             "dynamics of every point (sweep_dynamics.png); needs --max-steps or --sentences"),
        bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16"),
        extra: list[str] = typer.Option([], "--set", help="other fixed setting KEY=VALUE (repeatable)"),
    ) -> None:
        from rich.console import Console

        from decone.train import parse_settings

        base = {"max_steps": max_steps, "seed": seed, "bf16": bf16, "eval_data": eval_data, **parse_settings(extra, method)}
        base = {k: v for k, v in base.items() if v is not None}
        console = Console(stderr=True, highlight=False)
        rows = sweep(method, model, data, parse_grid(grid), output, seeds=seeds, base=base, probe_pairs=probe_pairs,
                     keep_models=keep_models, console=console, sentences=sentences, dynamics=dynamics)
        console.print((Path(output) / "sweep.md").read_text())
        console.print(f"{len(rows)} runs; sweep.jsonl, sweep.md and plots in {output}")
