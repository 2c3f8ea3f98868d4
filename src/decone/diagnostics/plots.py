"""Diagnostic plots (matplotlib, Agg: no display needed; no pyplot global state, so safe inside a training run).

Each function takes the per-model results of :func:`decone.diagnostics.report.diagnose_encoder` (the JSON part plus
the ``arrays`` part) and writes one PNG.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
DPI = 120
#: Singular values below this fraction of the largest are numerically zero (e.g. LayerNorm's zero-mean constraint).
NULL_TOL = 1e-6


def color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _finite(values) -> bool:
    return any(v is not None and math.isfinite(v) for v in values)


# ---------------------------------------------------------------------------------------------- histogram
def plot_cosine_hist(results: Sequence[dict], path: Path) -> Path:
    """Cosine similarity of random sentence pairs, one overlaid histogram per model, the mean as a dashed line."""
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
    lo = min(-0.25, min(float(r["arrays"]["cosines"].min()) for r in results))
    bins = np.linspace(lo, 1.0, 61)
    for i, r in enumerate(results):
        cos = r["arrays"]["cosines"]
        mean = float(cos.mean())
        ax.hist(cos, bins=bins, density=True, histtype="stepfilled", alpha=0.25, color=color(i))
        ax.hist(cos, bins=bins, density=True, histtype="step", lw=1.6, color=color(i),
                label=f"{r['label']} (mean {mean:.3f})")
        ax.axvline(mean, color=color(i), ls="--", lw=1.2)
    ax.axvline(0.0, color="0.4", lw=0.8, ls=":")
    ax.set_xlabel("cosine similarity of a random sentence pair")
    ax.set_ylabel("density (probability per unit cosine)")
    n = len(results[0]["arrays"]["cosines"])
    ax.set_title(f"Anisotropy: cosine of {n:,} random pairs (0 = isotropic)")
    ax.legend(loc="upper right", fontsize=9, frameon=True, framealpha=0.95)
    ax.set_xlim(lo, 1.0)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------- per layer
_LAYER_PANELS = (
    ("sentence", "avg_cosine", "sentence avg cosine\n(random pairs)", "cosine"),
    ("sentence", "isoscore", "sentence IsoScore", "IsoScore (0 = one axis, 1 = isotropic)"),
    ("sentence", "var_top1", "sentence variance on PC1", "share of total variance"),
    ("token", "baseline", "token baseline: cosine of random\nword pairs (different sentences)", "cosine"),
    ("token", "self_similarity", "self-similarity, adjusted\n(same word, different sentences)", "cosine - baseline"),
    ("token", "intra_similarity", "intra-sentence similarity, adjusted\n(word vs its sentence mean)", "cosine - baseline"),
)


def plot_layers(results: Sequence[dict], path: Path) -> Path:
    """Per-layer curves: sentence-level anisotropy and token-level contextualisation, one colour per model.

    For self- and intra-similarity, solid lines are content words and dashed lines function words (adjusted: the
    layer's token baseline subtracted, Ethayarajh 2019). One legend for the whole figure, below the panels.
    """
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(14, 8.4))
    axes = fig.subplots(2, 3)
    has_tokens = any(layer.get("token") for r in results for layer in r["layers"])
    for ax, (kind, key, title, ylabel) in zip(axes.flat, _LAYER_PANELS):
        for i, r in enumerate(results):
            rows = [layer for layer in r["layers"] if layer.get(kind)]
            if not rows:
                continue
            x = [layer["layer"] for layer in rows]
            style = _layer_style(i, len(results))
            if kind == "token" and key != "baseline":
                ax.plot(x, _nan([layer[kind][f"{key}_content_adj"] for layer in rows]), "-o", **style)
                ax.plot(x, _nan([layer[kind][f"{key}_function_adj"] for layer in rows]), "--s", **style)
            else:
                ax.plot(x, _nan([layer[kind][key] for layer in rows]), "-o", **style)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("layer (0 = embedding layer)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if kind == "token" and key != "baseline":
            ax.axhline(0.0, color="0.4", lw=0.8, ls=":")
        if kind == "token" and not has_tokens:
            ax.text(0.5, 0.5, "token metrics not computed", ha="center", va="center", transform=ax.transAxes)
    handles = [Line2D([], [], marker="o", label=r["label"], **_layer_style(i, len(results)))
               for i, r in enumerate(results)]
    if has_tokens:
        handles += [Line2D([], [], color="black", ls="-", marker="o", label="content words (self/intra)"),
                    Line2D([], [], color="black", ls="--", marker="s", label="function words (self/intra)")]
    fig.suptitle("Anisotropy and contextualisation by layer (sentence vectors: each layer pooled the encoder's way)")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), frameon=False, fontsize=9.5)
    return _save(fig, path)


def _layer_style(i: int, n: int) -> dict:
    """Earlier models drawn wider and lower, so that identical curves (a model and its whitened copy share every
    hidden layer) stay visible as a line inside a line."""
    return {"color": color(i), "lw": 1.4 + 2.2 * (n - 1 - i) / max(n - 1, 1), "ms": 4 + 3 * (n - 1 - i) / max(n - 1, 1),
            "zorder": 2 + i}


def _nan(values):
    return [float("nan") if v is None else v for v in values]


# ---------------------------------------------------------------------------------------------- PCA scatter
def plot_pca(results: Sequence[dict], path: Path) -> Path:
    """2-D projection of the L2-normalised sentence embeddings on their top two singular directions (uncentred PCA),
    one panel per model, with the origin and the centroid marked.

    Uncentred, so the origin stays at (0, 0): an isotropic cloud surrounds it, an anisotropic one sits in a narrow
    cone away from it (the first direction is then close to the mean direction).
    """
    n = len(results)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(5.2 * cols, 5.0 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for i, (ax, r) in enumerate(zip(axes, results)):
        a = r["arrays"]
        pts, centroid, share = a["pca_points"], a["pca_centroid"], a["pca_share"]
        ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.35, color=color(i), linewidths=0, label="sentences")
        ax.scatter([centroid[0]], [centroid[1]], marker="+", s=140, color="black", linewidths=2, label="centroid",
                   zorder=3)
        ax.scatter([0], [0], marker="x", s=90, color="black", linewidths=2, label="origin", zorder=3)
        lim = 1.05 * max(1e-9, float(np.abs(pts).max()))
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.axvline(0, color="0.6", lw=0.6)
        ax.set_xlabel(f"direction 1 ({share[0]:.1%} of the second moment)")
        ax.set_ylabel(f"direction 2 ({share[1]:.1%} of the second moment)")
        ax.set_title(f"{r['label']}\ncentroid norm {a['centroid_unit_norm']:.2f} (unit vectors; 0 = centred)",
                     fontsize=10)
        ax.legend(fontsize=8, loc="lower left", markerscale=1.5)
        ax.grid(alpha=0.3)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle("Unit-norm sentence embeddings on their top-2 singular directions (uncentred PCA; origin at 0, 0)")
    fig.tight_layout()
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------- spectrum
def plot_spectrum(results: Sequence[dict], path: Path) -> Path:
    """Singular-value spectrum of the centred sentence embeddings: normalised singular values (log scale) and the
    cumulative share of variance, against the principal-component index."""
    fig = Figure(figsize=(12, 4.5))
    ax1, ax2 = fig.subplots(1, 2)
    for i, r in enumerate(results):
        sv = r["arrays"]["singular_values"]
        null = int((sv <= sv[0] * NULL_TOL).sum()) if sv[0] > 0 else len(sv)
        sv = sv[sv > sv[0] * NULL_TOL] if sv[0] > 0 else sv[:0]
        if not len(sv):
            continue
        k = np.arange(1, len(sv) + 1)
        note = f"; {null} zero-variance direction{'s' if null != 1 else ''} not shown" if null else ""
        ax1.plot(k, sv / sv[0], color=color(i), lw=1.6,
                 label=f"{r['label']} (effective rank {r['output']['effective_rank']:.1f} of {r['output']['dim']}{note})")
        var = sv**2
        ax2.plot(k, np.cumsum(var) / var.sum(), color=color(i), lw=1.6, label=r["label"])
    ax1.set_yscale("log")
    ax1.set_xscale("log")
    ax1.set_xlabel("principal component index")
    ax1.set_ylabel("singular value / largest singular value")
    ax1.set_title("Singular-value spectrum (log-log)")
    ax1.grid(alpha=0.3, which="both")

    ax2.set_xscale("log")
    ax2.set_xlabel("number of principal components")
    ax2.set_ylabel("cumulative share of variance")
    ax2.set_ylim(0, 1.02)
    ax2.set_title("Cumulative explained variance")
    ax2.grid(alpha=0.3, which="both")
    handles, labels = ax1.get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.04 + 0.035 * len(results), 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=1, fontsize=9, frameon=False)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------- alignment-uniformity
def plot_alignment_uniformity(results: Sequence[dict], path: Path) -> Path:
    """Each model as a point in the (uniformity, alignment) plane, as in SimCSE's Figure 2: lower-left is better."""
    fig = Figure(figsize=(6.5, 5))
    ax = fig.subplots()
    xs, ys = [], []
    for i, r in enumerate(results):
        al, un = r["output"].get("alignment"), r["output"].get("uniformity")
        if al is None or un is None:
            continue
        xs.append(un)
        ys.append(al)
        ax.scatter([un], [al], s=90, color=color(i), edgecolors="black", zorder=3,
                   label=f"{r['label']} (align {al:.3f}, uniform {un:.3f})")
    if not xs:
        ax.text(0.5, 0.5, "no positive pairs in the data:\nalignment needs scored pairs (STS-B)", ha="center",
                va="center", transform=ax.transAxes)
    else:
        pad_x = max(0.15, 0.15 * (max(xs) - min(xs)))
        pad_y = max(0.05, 0.15 * (max(ys) - min(ys)))
        ax.set_xlim(min(xs) - pad_x, max(xs) + pad_x)
        ax.set_ylim(max(0.0, min(ys) - pad_y), max(ys) + pad_y)
        ax.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False, ncol=1)
    ax.set_xlabel(r"$\ell_{uniform}$ = log E exp(-2 ||f(x) - f(y)||$^2$)  (all sentence pairs)")
    ax.set_ylabel(r"$\ell_{align}$ = E ||f(x) - f(x$^+$)||$^2$  (STS-B pairs, score $\geq$ 4)")
    ax.set_title("Alignment vs uniformity (L2-normalised; lower is better for both)", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


PLOTS = {
    "cosine_hist.png": plot_cosine_hist,
    "layers.png": plot_layers,
    "pca.png": plot_pca,
    "spectrum.png": plot_spectrum,
    "alignment_uniformity.png": plot_alignment_uniformity,
}


def write_plots(results: Sequence[dict], out_dir: Path) -> list[Path]:
    """All diagnostic plots into ``out_dir``. -> the PNG paths."""
    out_dir = Path(out_dir)
    return [fn(results, out_dir / name) for name, fn in PLOTS.items()]
