"""Figures of the few-shot protocol (matplotlib, Agg backend; PNG).

* :func:`plot_accuracy_vs_shots`: accuracy against training-set size, one line per lambda (CE, CE + SCL), error bars
  one standard deviation over seeds, one panel per noise level.
* :func:`plot_accuracy_vs_noise`: accuracy against the fraction of flipped labels, one panel per training-set size.
* :func:`plot_feature_pca`: the test set's L2-normalised features projected on their first two principal components,
  coloured by gold class, one panel per lambda (the idea of Gunel et al.'s Figure 1), with the silhouette score
  (cosine) of the gold classes as a number to go with the picture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from decone.classify.fewshot import FEATURES_DIR, _loss_name, feature_file, summarize

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _panels(plt, n: int, width: float = 4.6, height: float = 3.8):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False, sharey=True)
    return fig, list(axes[0])


def plot_accuracy_vs_shots(rows: Sequence[dict], path: str | Path, task: str = "") -> Path:
    plt = _pyplot()
    summary = summarize(rows)
    noises = sorted({r["noise"] for r in summary})
    lambdas = sorted({r["lambda"] for r in summary})
    shots = sorted({r["shots"] for r in summary})
    fig, axes = _panels(plt, len(noises))
    for ax, noise in zip(axes, noises):
        for k, lam in enumerate(lambdas):
            pts = sorted((r["shots"], r["mean"], r["std"]) for r in summary if r["noise"] == noise and r["lambda"] == lam)
            if not pts:
                continue
            x, m, s = (np.array(v) for v in zip(*pts))
            offset = 1.0 + 0.03 * (k - (len(lambdas) - 1) / 2)  # a small shift so error bars do not overlap
            ax.errorbar(x * offset, 100 * m, yerr=100 * s, marker="o", capsize=4, color=_COLOURS[k % len(_COLOURS)],
                        label=_loss_name(lam))
        ax.set_xscale("log")
        ax.set_xticks(shots)
        ax.set_xticklabels([str(s) for s in shots])
        ax.minorticks_off()
        ax.set_xlabel("training examples (class-balanced)")
        ax.set_title(f"label noise {noise:g}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%), mean ± std over seeds")
    axes[0].legend(loc="best")
    fig.suptitle(f"{task} few-shot fine-tuning: accuracy vs training-set size".strip())
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_accuracy_vs_noise(rows: Sequence[dict], path: str | Path, task: str = "") -> Path:
    plt = _pyplot()
    summary = summarize(rows)
    shots = sorted({r["shots"] for r in summary})
    lambdas = sorted({r["lambda"] for r in summary})
    noises = sorted({r["noise"] for r in summary})
    fig, axes = _panels(plt, len(shots))
    for ax, n in zip(axes, shots):
        for k, lam in enumerate(lambdas):
            pts = sorted((r["noise"], r["mean"], r["std"]) for r in summary if r["shots"] == n and r["lambda"] == lam)
            if not pts:
                continue
            x, m, s = (np.array(v) for v in zip(*pts))
            shift = 0.006 * (k - (len(lambdas) - 1) / 2)
            ax.errorbar(x + shift, 100 * m, yerr=100 * s, marker="o", capsize=4, color=_COLOURS[k % len(_COLOURS)],
                        label=_loss_name(lam))
        ax.set_xticks(noises)
        ax.set_xticklabels([f"{p:g}" for p in noises])
        ax.set_xlabel("fraction of training labels flipped")
        ax.set_title(f"{n} training examples")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%), mean ± std over seeds")
    axes[0].legend(loc="best")
    fig.suptitle(f"{task} few-shot fine-tuning: accuracy vs label noise".strip())
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def feature_projection(features: np.ndarray) -> np.ndarray:
    """L2-normalise, centre and project on the first two principal components. (N, d) -> (N, 2)."""
    from sklearn.decomposition import PCA

    x = features.astype(np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return PCA(n_components=2, random_state=0).fit_transform(x)


def class_separation(features: np.ndarray, labels: Sequence[str]) -> float:
    """Silhouette score (cosine) of the gold classes over the features: -1 (mixed) .. 1 (separated)."""
    from sklearn.metrics import silhouette_score

    if len(set(labels)) < 2:
        return float("nan")
    return float(silhouette_score(features.astype(np.float64), np.asarray(labels), metric="cosine"))


def plot_feature_pca(panels: Sequence[tuple[str, np.ndarray]], labels: Sequence[str], classes: Sequence[str],
                     path: str | Path, title: str = "") -> Path:
    """panels: (title, features (N, d)) each; labels (N,) gold class names of the rows."""
    plt = _pyplot()
    labels = np.asarray(labels)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 4.4), squeeze=False)
    for ax, (name, feats) in zip(axes[0], panels):
        xy = feature_projection(feats)
        for k, c in enumerate(classes):
            mask = labels == c
            ax.scatter(xy[mask, 0], xy[mask, 1], s=6, alpha=0.5, color=_COLOURS[k % len(_COLOURS)], label=f"class {c}")
        ax.set_title(f"{name}\nsilhouette (cosine) {class_separation(feats, labels):.3f}")
        ax.set_xlabel("principal component 1")
        ax.set_ylabel("principal component 2")
        ax.grid(alpha=0.3)
    axes[0][0].legend(loc="best", markerscale=3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def make_plots(out: str | Path, rows: Sequence[dict], task: str, pca_shots: int | None = None,
               pca_noise: float | None = None, seed: int = 0) -> list[Path]:
    """All figures of a grid into ``out``. The PCA figure uses the saved test features of ``seed`` for the largest
    number of shots and the lowest noise level unless told otherwise (skipped where the features are missing)."""
    out = Path(out)
    if not rows:
        return []
    made = [plot_accuracy_vs_shots(rows, out / "accuracy_vs_shots.png", task)]
    if len({r["noise"] for r in rows}) > 1:
        made.append(plot_accuracy_vs_noise(rows, out / "accuracy_vs_noise.png", task))
    shots = pca_shots if pca_shots is not None else max(r["shots"] for r in rows)
    noise = pca_noise if pca_noise is not None else min(r["noise"] for r in rows)
    labels_file = out / FEATURES_DIR / "test_labels.json"
    lambdas = sorted({r["lambda"] for r in rows})
    files = [(lam, feature_file(out, shots, noise, lam, seed)) for lam in lambdas]
    if labels_file.exists() and all(f.exists() for _, f in files):
        info = json.loads(labels_file.read_text())
        accuracy = {r["lambda"]: r["accuracy"] for r in rows
                    if r["shots"] == shots and r["noise"] == noise and r["seed"] == seed}
        panels = [(f"{_loss_name(lam)}: accuracy {100 * accuracy.get(lam, float('nan')):.1f}%", np.load(f).astype(np.float32))
                  for lam, f in files]
        made.append(plot_feature_pca(panels, info["labels"], info["classes"], out / "features_pca.png",
                                     f"{task} test-set features (PCA of L2-normalised [CLS]), {shots} training "
                                     f"examples, noise {noise:g}, seed {seed}"))
    return made
