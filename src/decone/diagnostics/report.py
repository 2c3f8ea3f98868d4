"""``decone diagnose``: every metric for one or more models on one data set, as ``diagnostics.json`` and PNG plots.

For each model, on a seeded sample of sentences:

* ``output``: the sentence-level metrics (:func:`metrics.sentence_metrics`) of the encoder's output embeddings, plus
  ``alignment`` (STS-B pairs with score >= 4) and ``uniformity`` (all pairs of the sample);
* ``layers``: for every hidden layer (0 = embeddings), the same sentence-level metrics of that layer pooled the
  encoder's way (``sentence``) and the token-level metrics of :func:`tokens.token_metrics` (``token``); for a
  decoder whose tokenizer adds no BOS also without each sentence's first word, the attention sink
  (``token_without_first``; with a BOS, the sink is that special token, which is never counted);
* ``spectrum``: explained-variance ratio of every principal component of the output.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from decone.diagnostics import collect, metrics, tokens
from decone.diagnostics.data import DiagnoseData, sample

#: Defaults for the CLI and :func:`diagnose_encoder`.
DEFAULT_SAMPLE = 5000
DEFAULT_TOKEN_SAMPLE = 500
DEFAULT_PAIRS = metrics.DEFAULT_PAIRS
PCA_POINTS = 2000

_GENERIC_NAMES = {"model", "models", "final", "output", "out", "best", "checkpoint", "snapshot"}


def model_label(path: str) -> str:
    """A short label for a model path: its folder name, with the parent's where the name is generic ("model")."""
    parts = [p for p in str(path).replace("\\", "/").rstrip("/").split("/") if p]
    if not parts:
        return str(path)
    if parts[-1].lower() in _GENERIC_NAMES and len(parts) > 1:
        return f"{parts[-2]}/{parts[-1]}"
    return parts[-1]


def unique_labels(labels: Sequence[str]) -> list[str]:
    out, seen = [], {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out


def diagnose_encoder(
    encoder,
    data: DiagnoseData,
    label: str = "model",
    sample_size: int | None = DEFAULT_SAMPLE,
    n_pairs: int = DEFAULT_PAIRS,
    token_sample: int = DEFAULT_TOKEN_SAMPLE,
    seed: int = 0,
    batch_size: int = 64,
    show_progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """All diagnostics of one encoder on ``data``.

    Args:
        encoder: a loaded :class:`~decone.encoder.Encoder`.
        data: sentences (and STS-B pairs, for alignment).
        label: the model's name in tables and plots.
        sample_size: sentences sampled (seeded) for the sentence-level metrics and uniformity; also the cap on
            positive pairs for alignment. ``None`` = all.
        n_pairs: random pairs for the average cosine and its histogram.
        token_sample: sentences sampled for the token-level metrics (0 = skip them).
        seed: seed of every sample.

    Returns:
        a dict with the JSON-able report (``label``, ``path``, ``pooling``, ``dim``, ``output``, ``layers``,
        ``spectrum``, ``counts``, ``seconds``) and ``arrays`` (numpy arrays for the plots, not for JSON).
    """
    say = log or (lambda _msg: None)
    t0 = time.perf_counter()
    sents = sample(data.sentences, sample_size, seed)
    positives = sample(data.positive_pairs(), sample_size, seed)
    texts = list(dict.fromkeys([*sents, *(s for pair in positives for s in pair)]))
    index = {t: i for i, t in enumerate(texts)}
    s_idx = np.array([index[s] for s in sents])
    a_idx = np.array([index[a] for a, _ in positives], dtype=np.int64)
    b_idx = np.array([index[b] for _, b in positives], dtype=np.int64)

    say(f"{label}: encoding {len(texts):,} sentences (output and {collect.num_hidden_states(encoder)} hidden states)")
    out, per_layer = collect.output_and_layers(encoder, texts, batch_size, show_progress)

    def block(x: np.ndarray) -> dict:
        row = metrics.sentence_metrics(x[s_idx], n_pairs, seed)
        row.update(metrics.alignment_uniformity(x[a_idx], x[b_idx], x[s_idx]))
        return row

    say(f"{label}: sentence-level metrics (output and every layer)")
    output = block(out)
    layers = [{"layer": li, "sentence": block(per_layer[li])} for li in range(len(per_layer))]

    n_token_sents = 0
    if token_sample:
        token_sents = sample(sents, token_sample, seed)
        n_token_sents = len(token_sents)
        say(f"{label}: token-level metrics on {n_token_sents:,} sentences")
        states = collect.word_states(encoder, token_sents, batch_size=32, show_progress=show_progress)
        if states.vectors.shape[1]:
            for row in tokens.token_metrics(states, n_pairs=n_pairs, seed=seed):
                layers[row["layer"]]["token"] = row
        if getattr(encoder, "is_decoder", False) and not _adds_bos(encoder.tokenizer):
            rest = tokens.without_first_words(states)  # the first position, a decoder's attention sink, left out
            if rest.vectors.shape[1]:
                for row in tokens.token_metrics(rest, n_pairs=n_pairs, seed=seed):
                    layers[row["layer"]]["token_without_first"] = row

    x = out[s_idx].astype(np.float64)
    sv = metrics.singular_values(x)
    var = sv**2
    spectrum = (var / var.sum()).tolist() if var.sum() > 0 else []
    arrays = {"cosines": metrics.pair_cosines(x, n_pairs, seed), "singular_values": sv, **_pca2(x, seed)}
    return {
        "label": label,
        "path": str(getattr(encoder, "source", "")),
        "pooling": encoder.pooling,
        "dim": int(out.shape[1]),
        "hidden_size": int(per_layer.shape[2]),
        "num_hidden_states": int(per_layer.shape[0]),
        "counts": {"sentences": len(sents), "positive_pairs": len(positives), "token_sentences": n_token_sents},
        "output": output,
        "layers": layers,
        "spectrum": spectrum,
        "seconds": round(time.perf_counter() - t0, 2),
        "arrays": arrays,
    }


def _adds_bos(tokenizer) -> bool:
    """Whether the tokenizer opens every text with a special token (Llama's, Gemma's BOS): that token is then the
    attention sink, and the word metrics never count special tokens, so there is no first word to leave out."""
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] in set(getattr(tokenizer, "all_special_ids", []) or [])


def _pca2(x: np.ndarray, seed: int) -> dict:
    """Uncentred PCA of the L2-normalised rows: coordinates of up to PCA_POINTS rows and of the centroid on the top two
    right-singular directions, their shares of the second moment, and the centroid's norm."""
    u = metrics.unit_rows(x)
    ev, vecs = metrics.eigh(u.T @ u)  # right-singular directions of u, ascending
    var = np.clip(ev[::-1], 0.0, None)
    vt = vecs[:, ::-1].T
    share = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    keep = sample(list(range(len(u))), PCA_POINTS, seed)
    centroid = u.mean(axis=0)
    return {
        "pca_points": u[keep] @ vt[:2].T,
        "pca_centroid": centroid @ vt[:2].T,
        "pca_share": np.pad(share, (0, max(0, 2 - len(share)))),
        "centroid_unit_norm": float(np.linalg.norm(centroid)),
    }


def to_json(results: Sequence[dict], settings: dict, data: DiagnoseData) -> dict:
    """The JSON document: settings, data counts, and each model's report without its arrays. NaN -> null."""
    return _clean({
        "decone_version": _version(),
        "settings": settings,
        "data": {"source": data.source, "sentences": len(data.sentences), "pairs": len(data.pairs),
                 "positive_pairs": len(data.positive_pairs())},
        "models": [{k: v for k, v in r.items() if k != "arrays"} for r in results],
    })


def write_json(doc: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    return path


def _clean(obj):
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


#: Rows of the comparison table: (label, where, key, format).
TABLE_ROWS = (
    ("avg cosine, random pairs", "output", "avg_cosine", "{:.3f}"),
    ("IsoScore", "output", "isoscore", "{:.4f}"),
    ("I(W)", "output", "partition_isotropy", "{:.3g}"),
    ("I(W), unit rows", "output", "partition_isotropy_unit", "{:.3g}"),
    ("variance, top 1 PC", "output", "var_top1", "{:.1%}"),
    ("variance, top 5 PCs", "output", "var_top5", "{:.1%}"),
    ("variance, top 10 PCs", "output", "var_top10", "{:.1%}"),
    ("effective rank", "output", "effective_rank", "{:.1f}"),
    ("mean norm", "output", "mean_norm", "{:.3f}"),
    ("centroid norm", "output", "centroid_norm", "{:.3f}"),
    ("centroid / mean norm", "output", "centroid_ratio", "{:.3f}"),
    ("alignment (lower better)", "output", "alignment", "{:.3f}"),
    ("uniformity (lower better)", "output", "uniformity", "{:.3f}"),
    ("last layer: token baseline", "token", "baseline", "{:.3f}"),
    ("self-sim adj, content", "token", "self_similarity_content_adj", "{:.3f}"),
    ("self-sim adj, function", "token", "self_similarity_function_adj", "{:.3f}"),
    ("intra-sim adj, content", "token", "intra_similarity_content_adj", "{:.3f}"),
    ("intra-sim adj, function", "token", "intra_similarity_function_adj", "{:.3f}"),
    ("decoders, first token left out: token baseline", "token_without_first", "baseline", "{:.3f}"),
    ("  self-sim adj, content", "token_without_first", "self_similarity_content_adj", "{:.3f}"),
    ("  intra-sim adj, content", "token_without_first", "intra_similarity_content_adj", "{:.3f}"),
)


def summary_table(models: Sequence[dict]):
    """A rich Table comparing the models (columns) on the main metrics (rows)."""
    from rich.table import Table

    table = Table(title="decone diagnose (output embeddings; token rows: last hidden layer)", show_lines=False)
    table.add_column("metric")
    for m in models:
        table.add_column(f"{m['label']}\n({m['pooling']}, d={m['dim']})", justify="right")
    for name, where, key, fmt in TABLE_ROWS:
        if where == "token_without_first" and not any(m["layers"][-1].get(where) for m in models):
            continue  # decoder rows, for encoder-only comparisons left out
        cells = []
        for m in models:
            if where == "output":
                value = m["output"].get(key)
            else:
                value = (m["layers"][-1].get(where) or {}).get(key)
            cells.append("-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else fmt.format(value))
        table.add_row(name, *cells)
    return table


def _version() -> str:
    from decone import __version__

    return __version__


def diagnose(
    models: Sequence[str],
    output: str | Path,
    data: str | Path | None = None,
    pooling: str | None = None,
    labels: Sequence[str] | None = None,
    sample_size: int | None = DEFAULT_SAMPLE,
    n_pairs: int = DEFAULT_PAIRS,
    token_sample: int = DEFAULT_TOKEN_SAMPLE,
    seed: int = 0,
    batch_size: int = 64,
    device: str | None = None,
    show_progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict, list[Path]]:
    """Diagnose each model, then write ``diagnostics.json`` and the plots into ``output``.

    Args:
        models: model folders or hub names, loaded with :meth:`Encoder.load` (``pooling`` overrides theirs).
        output: the output folder.
        data: see :func:`decone.diagnostics.data.load_data` (default: the STS Benchmark folder of the data dir).
        labels: names for the models (default: from their paths).

    Returns:
        (the JSON document, [the json path and the PNG paths]).

    Raises:
        DataError, ModelError, ConfigError: one-line user errors.
    """
    from decone.diagnostics.data import load_data
    from decone.diagnostics.plots import write_plots
    from decone.encoder import Encoder
    from decone.errors import ConfigError, check_device, check_output_dir

    if not models:
        raise ConfigError("no model given: pass --model at least once")
    if labels and len(labels) != len(models):
        raise ConfigError(f"{len(labels)} labels for {len(models)} models: give one --label per --model or none")
    for name, value, low in (("sample", sample_size, 2), ("pairs", n_pairs, 1), ("token-sample", token_sample, 0),
                             ("batch-size", batch_size, 1)):
        if value is not None and value < low:
            raise ConfigError(f"--{name} must be at least {low}, got {value}")
    check_device(device)
    check_output_dir(output, overwrite=True)  # a folder of earlier diagnostics is rewritten
    say = log or (lambda _msg: None)
    dataset = load_data(data)
    if len(dataset.sentences) < 2:
        raise ConfigError(f"{dataset.source}: need at least 2 sentences")
    names = unique_labels(list(labels) if labels else [model_label(m) for m in models])
    results = []
    for i, (model, label) in enumerate(zip(models, names), start=1):
        say(f"[{i}/{len(models)}] loading {model}")
        encoder = Encoder.load(model, pooling=pooling, device=device)
        results.append(diagnose_encoder(encoder, dataset, label, sample_size, n_pairs, token_sample, seed, batch_size,
                                        show_progress, log))
        del encoder
    settings = {"models": list(map(str, models)), "labels": names, "pooling": pooling, "sample": sample_size,
                "pairs": n_pairs, "token_sample": token_sample, "seed": seed, "positive_score": 4.0,
                "uniformity_t": 2.0, "alignment_alpha": 2.0}
    doc = to_json(results, settings, dataset)
    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    say("writing diagnostics.json and plots")
    paths = [write_json(doc, out_dir / "diagnostics.json"), *write_plots(results, out_dir)]
    return doc, paths
