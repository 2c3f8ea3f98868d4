"""Training dynamics: sentence-level isotropy metrics on a fixed probe set every N steps, and ``dynamics.png``.

:class:`DynamicsCallback` follows the trainer's callback protocol (``on_train_begin`` / ``on_step_end`` /
``on_train_end``). Every ``every`` optimizer steps (and at step 0 and the last step) it embeds a fixed probe set with
the model being trained (eval mode, no gradients, training mode restored; no global random state is touched, so
training stays reproducible) and returns ``probe_*`` metrics, which the trainer merges into that step's row of
``train_log.jsonl``:

``probe_avg_cosine``, ``probe_isoscore``, ``probe_partition_isotropy_unit``, ``probe_var_top1``,
``probe_effective_rank``, ``probe_mean_norm``, ``probe_centroid_ratio``, ``probe_uniformity``, and with dev pairs
``probe_alignment`` (pairs with score >= 4) and ``probe_dev_spearman`` (Spearman x 100 of cosine vs gold on the probe
pairs); ``probe_seconds`` (the probe's wall time) and ``probe_overhead`` (probe time / wall time since the previous
probe, so the cost is visible in the log).

Default probe (:func:`make_dynamics_callback`): 256 STS-B dev pairs (seeded), i.e. about 512 sentences, which serve both
as the probe sentences and as the dev pairs, so one encoding pass gives everything.
At the end of training it writes ``dynamics.png`` into the output folder (:func:`plot_dynamics`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from decone.diagnostics import metrics

PREFIX = "probe_"
DEFAULT_PROBE_PAIRS = 256
PLOT_FILE = "dynamics.png"


class DynamicsCallback:
    """Isotropy metrics on a fixed probe set every ``every`` steps.

    Args:
        every: probe every N optimizer steps (also at step 0 and at the last step); 0 or less: only at 0 and the end.
        probe_sentences: the fixed probe sentences (avg cosine, IsoScore, uniformity, ...).
        dev_pairs: (s1, s2, score 0-5) pairs for alignment (score >= 4) and a dev Spearman; None to skip both.
        n_pairs: random pairs for the average cosine (the default covers every pair of up to ~630 sentences, exactly).
        seed: the sampling seed (its own generator).
        batch_size: texts per forward pass when probing.
        bf16: bf16 autocast while probing (default fp32, the diagnostics' precision).
        plot: write ``dynamics.png`` at the end of training.
    """

    def __init__(
        self,
        every: int,
        probe_sentences: Sequence[str],
        dev_pairs: Sequence[tuple[str, str, float]] | None = None,
        n_pairs: int = 200_000,
        seed: int = 0,
        batch_size: int = 128,
        bf16: bool | None = False,
        plot: bool = True,
    ):
        probe_sentences = [s for s in probe_sentences if s]
        if len(probe_sentences) < 2:
            from decone.errors import DataError

            raise DataError(f"{len(probe_sentences)} probe sentence(s): the isotropy probe needs at least 2")
        self.every = int(every)
        self.probe_sentences = list(probe_sentences)
        self.dev_pairs = [(a, b, float(s)) for a, b, s in dev_pairs] if dev_pairs else []
        self.n_pairs = n_pairs
        self.seed = seed
        self.batch_size = batch_size
        self.bf16 = bf16
        self.plot = plot
        self.history: list[dict] = []
        self._texts = list(dict.fromkeys([*self.probe_sentences, *(s for a, b, _ in self.dev_pairs for s in (a, b))]))
        index = {t: i for i, t in enumerate(self._texts)}
        self._probe_idx = np.array([index[s] for s in self.probe_sentences])
        self._pair_a = np.array([index[a] for a, _, _ in self.dev_pairs], dtype=np.int64)
        self._pair_b = np.array([index[b] for _, b, _ in self.dev_pairs], dtype=np.int64)
        self._gold = np.array([s for _, _, s in self.dev_pairs])
        self._positive = self._gold >= 4.0
        self._last_probe_end: float | None = None
        self._probed_steps: set[int] = set()

    # ------------------------------------------------------------------ the probe
    def probe(self, encoder) -> dict:
        """Embed the probe set with ``encoder`` and compute the metrics. -> ``probe_*`` floats."""
        t0 = time.perf_counter()
        emb = encoder.encode(self._texts, batch_size=self.batch_size, show_progress=False, bf16=self.bf16)
        x = emb[self._probe_idx].astype(np.float64)
        shares = metrics.variance_shares(x, (1,))
        row = {
            "avg_cosine": metrics.avg_cosine(x, self.n_pairs, self.seed),
            "isoscore": metrics.isoscore(x),
            "partition_isotropy_unit": metrics.partition_isotropy(x, normalize=True),
            "var_top1": shares[1],
            "effective_rank": metrics.effective_rank(x),
            "mean_norm": metrics.norm_stats(x)["mean_norm"],
            "centroid_ratio": metrics.norm_stats(x)["centroid_ratio"],
            "uniformity": metrics.uniformity(x),
        }
        if len(self.dev_pairs):
            a, b = emb[self._pair_a].astype(np.float64), emb[self._pair_b].astype(np.float64)
            if self._positive.any():
                row["alignment"] = metrics.alignment(a[self._positive], b[self._positive])
            cos = np.einsum("ij,ij->i", metrics.unit_rows(a), metrics.unit_rows(b))
            row["dev_spearman"] = _spearman100(cos, self._gold)
        row = {PREFIX + k: round(float(v), 6) for k, v in row.items() if v is not None and math.isfinite(v)}
        row[PREFIX + "seconds"] = round(time.perf_counter() - t0, 3)
        return row

    def _run(self, state) -> dict:
        start = time.perf_counter()
        row = self.probe(state.encoder)
        if self._last_probe_end is not None:
            row[PREFIX + "overhead"] = round(row[PREFIX + "seconds"] / max(start - self._last_probe_end + row[PREFIX + "seconds"], 1e-9), 4)
        self._last_probe_end = time.perf_counter()
        self._probed_steps.add(int(state.step))
        self.history.append({"step": int(state.step), **row})
        return row

    def due(self, step: int, max_steps: int) -> bool:
        if step in self._probed_steps:
            return False
        return step == 0 or (self.every > 0 and step % self.every == 0) or (max_steps and step >= max_steps)

    # ------------------------------------------------------------------ callback protocol
    def on_train_begin(self, state) -> dict | None:
        """Probe the untrained model (step 0, or the resumed step). The trainer logs the dict as the step-0 row."""
        return None if int(state.step) in self._probed_steps else self._run(state)

    def on_step_end(self, state) -> dict | None:
        if self.due(int(state.step), int(state.max_steps)):
            return self._run(state)
        return None

    def on_train_end(self, state) -> None:
        if self.plot and self.history:
            plot_dynamics(state.log_path, Path(state.output_dir) / PLOT_FILE, extra_rows=self.history)


def _spearman100(x: np.ndarray, y: np.ndarray) -> float:
    from decone.evaluate.core import spearman100

    return spearman100(x, y)


def default_probe(
    n_pairs: int = DEFAULT_PROBE_PAIRS, seed: int = 0, path: str | Path | None = None
) -> tuple[list[str], list[tuple[str, str, float]]]:
    """A probe set: ``n_pairs`` seeded pairs of ``path`` (default: STS-B dev from the data dir) and their sentences.

    Raises:
        DataError: the file is missing or malformed.
    """
    from decone.diagnostics.data import default_stsb_dir, read_stsb, sample
    from decone.errors import ConfigError

    if n_pairs is not None and n_pairs < 2:
        raise ConfigError(f"--probe-pairs must be at least 2, got {n_pairs}")
    if path is None:
        path = default_stsb_dir() / "sts-dev.csv"
    path = Path(path)
    pairs = read_stsb(path) if path.suffix.lower() == ".csv" and _looks_stsb(path) else _scored_pairs(path)
    pairs = sample(pairs, n_pairs, seed)
    sentences = list(dict.fromkeys(s for a, b, _ in pairs for s in (a, b)))
    return sentences, pairs


def _looks_stsb(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline().split("\t")
        float(first[4])
        return len(first) >= 7
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        return False


def _scored_pairs(path: Path) -> list[tuple[str, str, float]]:
    from decone.data import read_scored_pairs

    return read_scored_pairs(path)


def make_dynamics_callback(config, n_pairs: int = DEFAULT_PROBE_PAIRS) -> DynamicsCallback:
    """The trainer's default: every ``config.diagnose_every`` steps, on ``n_pairs`` seeded STS-B dev pairs (or, where
    the data dir has no STS-B, pairs of ``config.eval_data``), seeded by ``config.seed``, in the trainer's precision
    (``config.bf16``: None = bf16 where the hardware has it; it changes the metrics in the 4th digit)."""
    from decone.errors import DataError

    try:
        sentences, pairs = default_probe(n_pairs, getattr(config, "seed", 0))
    except DataError:
        eval_data = getattr(config, "eval_data", None)
        if not eval_data:
            raise DataError("--diagnose-every needs probe data: STS-B dev (sts/STSBenchmark/sts-dev.csv in the data "
                            "dir: set DECONE_DATA) or --eval-data") from None
        sentences, pairs = default_probe(n_pairs, getattr(config, "seed", 0), eval_data)
    return DynamicsCallback(int(config.diagnose_every), sentences, pairs, seed=getattr(config, "seed", 0),
                            bf16=getattr(config, "bf16", None))


# ---------------------------------------------------------------------------------------------- plotting
_PANELS = (
    ("probe_avg_cosine", "Anisotropy: avg cosine of random pairs", "cosine (0 = isotropic)"),
    ("probe_isoscore", "IsoScore", "IsoScore (0 = one axis, 1 = isotropic)"),
    ("probe_var_top1", "Variance on the top principal component", "share of total variance"),
    ("probe_effective_rank", "Effective rank (Roy & Vetterli)", "dimensions"),
    ("probe_alignment", "Alignment (STS-B pairs, score >= 4)", "E ||f(x) - f(x+)||^2 (lower = better)"),
    ("probe_uniformity", "Uniformity", "log E exp(-2 ||f(x) - f(y)||^2) (lower = better)"),
    ("probe_dev_spearman", "STS dev Spearman", "Spearman rho x 100"),
    ("loss", "Training loss", "loss (nats)"),
)


def read_log(log_path: str | Path) -> list[dict]:
    """Rows of a ``train_log.jsonl`` (missing file: no rows; unreadable lines are skipped)."""
    path = Path(log_path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def plot_dynamics(log_path: str | Path | None, out_png: str | Path, extra_rows: Sequence[dict] = ()) -> Path | None:
    """Plot the ``probe_*`` metrics, the dev Spearman and the loss of a training log against the optimizer step.

    Args:
        log_path: ``train_log.jsonl`` (rows with ``step``); may be None.
        out_png: where to write the PNG.
        extra_rows: more rows (e.g. a callback's history); a log row's values win where both have a key.

    Returns:
        the PNG path, or None where there is nothing to plot.
    """
    from matplotlib.figure import Figure

    series: dict[str, dict[int, float]] = {}
    for row in [*extra_rows, *(read_log(log_path) if log_path else [])]:
        if "step" not in row:
            continue
        for key, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                series.setdefault(key, {})[int(row["step"])] = float(value)
    panels = [p for p in _PANELS if p[0] in series or (p[0] == "probe_dev_spearman" and "eval_spearman" in series)]
    if not panels:
        return None
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.3 * cols, 3.5 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, (key, title, ylabel) in zip(axes, panels):
        if key in series:
            steps = sorted(series[key])
            style = "-" if key == "loss" else "-o"
            label = "probe pairs (dev subset)" if key == "probe_dev_spearman" else None
            ax.plot(steps, [series[key][s] for s in steps], style, ms=3.5, lw=1.4, color="#1f77b4", label=label)
        if key == "probe_dev_spearman" and "eval_spearman" in series:
            steps = sorted(series["eval_spearman"])
            ax.plot(steps, [series["eval_spearman"][s] for s in steps], "-s", ms=3.5, lw=1.4, color="#d62728",
                    label="--eval-data (full)")
        if key == "probe_dev_spearman":
            ax.legend(fontsize=8, frameon=False)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel, fontsize=8.5)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    n_probe = len(series.get("probe_avg_cosine", {}))
    cost = series.get("probe_overhead")
    note = f"; probe cost {100 * np.mean(list(cost.values())):.1f}% of training time" if cost else ""
    fig.suptitle(f"Training dynamics ({n_probe} probes of the sentence embeddings{note})")
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=120, bbox_inches="tight")
    return out_png
