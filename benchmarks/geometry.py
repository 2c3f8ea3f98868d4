"""The geometry of the main table's models before and after contrastive training: every ``decone diagnose`` metric
(anisotropy, isotropy, spectrum, norms, alignment and uniformity, token-level self- and intra-sentence similarity
adjusted by the anisotropy baseline, per layer) of decone-raw-mini, raw-mini + BERT-whitening, raw-mini after
``simcse`` with and without its train-only MLP head (each seed of the main table), and all-MiniLM-L6-v2.

Built by ``python benchmarks/results.py --only geometry`` (or a whole invocation): each (model, seed) is recorded in
``results/geometry/`` (committed), so a fresh checkout regenerates the tables without training or encoding. The same
tables go to RESULTS.md and, between their markers, to ``docs/diagnostics.md``: nothing there is retyped.

Every model is read with mean pooling (raw-mini's pooling in the main table; the whitened folder keeps its own) on the
same seeded sample of STS-B sentences (:func:`decone.diagnostics.data.load_data`'s default), as ``decone diagnose``
reads them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import numpy as np

# (main-table row, column header, pooling): the columns, in order; trained rows have one record a seed
MODELS = [
    ("raw-mean", "raw-mini", "mean"),
    ("raw-whitened", "raw-mini + whitening", None),
    ("simcse", "+ simcse (MLP head in training)", "mean"),
    ("simcse-nohead", "+ simcse, no head", "mean"),
    ("minilm", "all-MiniLM-L6-v2", "mean"),
]
LAYER_MODELS = ("raw-mean", "simcse-nohead", "minilm")  # the per-layer table's columns (first seed of a trained row)
# (row label, where: "output" or the last layer's "token", key, format); "%" formats a share as a percentage
ROWS = [
    ("avg cosine, random pairs", "output", "avg_cosine", ".3f"),
    ("IsoScore", "output", "isoscore", ".3f"),
    ("I(W), unit rows", "output", "partition_isotropy_unit", ".3f"),
    ("variance on top 1 PC", "output", "var_top1", "%"),
    ("variance on top 5 PCs", "output", "var_top5", "%"),
    ("variance on top 10 PCs", "output", "var_top10", "%"),
    ("effective rank", "output", "effective_rank", ".1f"),
    ("mean norm", "output", "mean_norm", ".2f"),
    ("centroid / mean norm", "output", "centroid_ratio", ".3f"),
    ("alignment (↓)", "output", "alignment", ".3f"),
    ("uniformity (↓)", "output", "uniformity", ".3f"),
    ("last layer: token baseline", "token", "baseline", ".3f"),
    ("self-similarity adj., content words", "token", "self_similarity_content_adj", ".3f"),
    ("self-similarity adj., function words", "token", "self_similarity_function_adj", ".3f"),
    ("intra-sentence sim. adj., content words", "token", "intra_similarity_content_adj", ".3f"),
    ("intra-sentence sim. adj., function words", "token", "intra_similarity_function_adj", ".3f"),
]


def settings(quick: bool) -> dict:
    """``decone diagnose``'s sample sizes (its defaults; a quick run uses small ones)."""
    if quick:
        return {"sample": 300, "pairs": 1000, "token_sample": 40, "seed": 0}
    return {"sample": 5000, "pairs": 10000, "token_sample": 500, "seed": 0}


def command(s: dict) -> str:
    """The ``decone diagnose`` options a user passes to measure the same."""
    return f"--sample {s['sample']} --pairs {s['pairs']} --token-sample {s['token_sample']} --seed {s['seed']}"


def diagnose_folder(folder: str, pooling: str | None, label: str, s: dict, arrays: Path | None = None,
                    data: str | Path | None = None) -> dict:
    """Every ``decone diagnose`` metric of one model folder (:func:`decone.diagnostics.report.diagnose_encoder`), as
    its JSON report (``output``, ``layers``, ``pooling``, ``dim``, ``counts``, ``seconds``; NaN -> None). The random
    pairs' cosines, which the histogram plots, go to ``arrays`` (an ``.npz``) where given. ``data``: what
    ``decone diagnose --data`` takes (default: STS-B, all three splits)."""
    from decone.diagnostics.data import load_data
    from decone.diagnostics.report import diagnose_encoder, to_json
    from decone.encoder import Encoder

    data = load_data(data)
    encoder = Encoder.load(folder, pooling=pooling)
    result = diagnose_encoder(encoder, data, label, s["sample"], s["pairs"], s["token_sample"], s["seed"],
                              show_progress=False)
    if arrays is not None:
        arrays.parent.mkdir(parents=True, exist_ok=True)
        tmp = arrays.with_suffix(".tmp.npz")
        np.savez(tmp, cosines=result["arrays"]["cosines"])
        tmp.replace(arrays)
    report = to_json([result], {}, data)["models"][0]
    return {k: report[k] for k in ("pooling", "dim", "counts", "output", "layers", "seconds")}


def build(records, seeds: list[int], model_folder: Callable[[str, int | None], str], recipe: Callable[[str], dict],
          s: dict, work: Path, data: str | Path | None = None) -> dict[str, list[dict]]:
    """Each model's reports, one a seed for a trained row (``seeds``) and one for an untrained row: the committed
    record where its key (row, seed, settings, training recipe) matches, else ``model_folder(row, seed)`` (which
    trains the model first where needed) diagnosed now. -> {row: [report with its ``seed``, ...]}."""
    out: dict[str, list[dict]] = {}
    for row, header, pooling in MODELS:
        trained = bool(recipe(row))
        for seed in (seeds if trained else [None]):
            key = {"row": row, "seed": seed, "pooling": pooling, "settings": s, "recipe": recipe(row)}

            def make(row=row, seed=seed, pooling=pooling, header=header) -> dict:
                return diagnose_folder(model_folder(row, seed), pooling, header, s,
                                       work / "geometry" / f"{row}-seed{seed}.npz", data)

            name = f"{row}-seed{seed}" if trained else row
            out.setdefault(row, []).append({**records.get(name, key, make), "seed": seed})
    return out


def _value(report: dict, where: str, key: str):
    if where == "output":
        return report["output"].get(key)
    return (report["layers"][-1].get("token") or {}).get(key)


def _cell(values: list, fmt: str) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "–"
    scale, spec = (100.0, ".1f") if fmt == "%" else (1.0, fmt)
    suffix = "%" if fmt == "%" else ""
    mean = float(np.mean(values)) * scale
    text = f"{mean:{spec}}{suffix}".replace("-", "−")
    if len(values) > 1:
        text += f" ± {float(np.std(values, ddof=1)) * scale:{spec}}"
    return text


def table(reports: dict[str, list[dict]]) -> list[str]:
    """The comparison: one column a model (mean ± sample std over seeds where it has several), one row a metric."""
    cols = [(row, header) for row, header, _ in MODELS if row in reports]
    lines = ["| metric | " + " | ".join(h for _, h in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label, where, key, fmt in ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell([_value(r, where, key) for r in reports[row]], fmt)
                                                 for row, _ in cols) + " |")
    return lines


def layer_table(reports: dict[str, list[dict]]) -> list[str]:
    """Per layer (0 = embeddings), for :data:`LAYER_MODELS` (a trained row's first seed): sentence avg cosine /
    IsoScore; token baseline; adjusted self-similarity content / function; adjusted intra-sentence similarity
    content / function."""
    cols = [(row, header) for row, header, _ in MODELS if row in LAYER_MODELS and row in reports]

    def cell(report: dict, i: int) -> str:
        if i >= len(report["layers"]):
            return ""
        layer = report["layers"][i]
        sent, tok = layer["sentence"], layer.get("token") or {}

        def f(x, d=2):
            return "–" if x is None else f"{x:.{d}f}".replace("-", "−")

        return (f"{f(sent.get('avg_cosine'))} / {f(sent.get('isoscore'), 3)}; {f(tok.get('baseline'))}; "
                f"{f(tok.get('self_similarity_content_adj'))} / {f(tok.get('self_similarity_function_adj'))}; "
                f"{f(tok.get('intra_similarity_content_adj'))} / {f(tok.get('intra_similarity_function_adj'))}")

    firsts = {row: reports[row][0] for row, _ in cols}
    n = max(len(r["layers"]) for r in firsts.values())
    lines = ["| layer | " + " | ".join(h for _, h in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for i in range(n):
        lines.append(f"| {i} | " + " | ".join(cell(firsts[row], i) for row, _ in cols) + " |")
    return lines


def _mean(reports: list[dict], where: str, key: str) -> float | None:
    values = [v for v in (_value(r, where, key) for r in reports) if v is not None]
    return float(np.mean(values)) if values else None


def _than(row: dict, a: str, b: str) -> str:
    return "less" if None not in (row[a], row[b]) and row[a] < row[b] else "more"


def findings(reports: dict[str, list[dict]]) -> list[str]:
    """What the table shows, in sentences computed from it (so the prose never drifts from the numbers)."""
    need = ("raw-mean", "simcse", "simcse-nohead", "minilm")
    if not all(row in reports for row in need):
        return []
    m = {row: {key: _mean(reports[row], where, key) for _, where, key, _ in ROWS} for row in need}
    n = len(reports["simcse"])
    seeds = f" (mean of {n} seeds)" if n > 1 else ""

    def f(x, d=3):
        return "–" if x is None else f"{x:.{d}f}".replace("-", "−")

    def moves(key: str, down: str, up: str) -> str:  # the words follow the numbers (no head against raw-mini)
        before, after = m["raw-mean"][key], m["simcse-nohead"][key]
        return down if None not in (before, after) and after < before else up

    out = [
        f"Contrastive training {moves('avg_cosine', 'lowers', 'raises')} raw-mini's average cosine of random pairs "
        f"from {f(m['raw-mean']['avg_cosine'])} to {f(m['simcse']['avg_cosine'])} with SimCSE's train-only MLP head "
        f"and to {f(m['simcse-nohead']['avg_cosine'])} without it{seeds}; all-MiniLM-L6-v2 sits at "
        f"{f(m['minilm']['avg_cosine'])}.",
        f"Uniformity goes from {f(m['raw-mean']['uniformity'])} to {f(m['simcse']['uniformity'])} (head) and "
        f"{f(m['simcse-nohead']['uniformity'])} (no head), while alignment goes from "
        f"{f(m['raw-mean']['alignment'])} to {f(m['simcse']['alignment'])} and {f(m['simcse-nohead']['alignment'])}: "
        + ("uniformity bought with alignment, Wang & Isola's trade-off."
           if (m["simcse-nohead"]["alignment"] or 0) > (m["raw-mean"]["alignment"] or 0)
           else "better on both counts."),
        f"The centroid moves {moves('centroid_ratio', 'toward', 'away from')} the origin: "
        f"{f(m['raw-mean']['centroid_ratio'])} of the mean norm in raw-mini, {f(m['simcse']['centroid_ratio'])} and "
        f"{f(m['simcse-nohead']['centroid_ratio'])} after training.",
        f"The last layer's token baseline (random words of different sentences) {moves('baseline', 'falls', 'rises')} "
        f"from {f(m['raw-mean']['baseline'])} to {f(m['simcse-nohead']['baseline'])} without the head. MiniLM keeps "
        f"function words {_than(m['minilm'], 'self_similarity_function_adj', 'self_similarity_content_adj')} "
        f"self-similar ({f(m['minilm']['self_similarity_function_adj'])}, adjusted) than content words "
        f"({f(m['minilm']['self_similarity_content_adj'])}); in raw-mini they are "
        f"{f(m['raw-mean']['self_similarity_function_adj'])} and {f(m['raw-mean']['self_similarity_content_adj'])}.",
    ]
    return out


def plot_hist(reports: dict[str, list[dict]], work: Path, path: Path) -> Path | None:
    """The random-pair cosine histogram of each model's first seed, from the arrays its diagnosis left in ``work``;
    None (the committed figure stays) where any is missing, e.g. on a fresh checkout that reused every record."""
    from decone.diagnostics.plots import plot_cosine_hist

    results = []
    for row, header, _ in MODELS:
        if row not in reports:
            continue
        arrays = work / "geometry" / f"{row}-seed{reports[row][0]['seed']}.npz"
        if not arrays.exists():
            return None
        with np.load(arrays) as z:
            results.append({"label": header, "arrays": {"cosines": z["cosines"]}})
    return plot_cosine_hist(results, path) if results else None


def plot_layers(reports: dict[str, list[dict]], path: Path) -> Path:
    """``decone diagnose``'s per-layer figure for :data:`LAYER_MODELS` (a trained row's first seed)."""
    from decone.diagnostics.plots import plot_layers as plot

    results = [{**reports[row][0], "label": header} for row, header, _ in MODELS if row in LAYER_MODELS and row in reports]
    return plot(results, path)


def markdown(reports: dict[str, list[dict]], s: dict, seeds: list[int], figs: str) -> list[str]:
    """The section: how it was measured, the table, what it shows, the per-layer table and the figures (``figs``:
    the figures' folder as the page links it)."""
    counts = next(iter(reports.values()))[0]["counts"]
    seconds = sum(r["seconds"] for rs in reports.values() for r in rs)
    lines = [
        f"`decone diagnose --pooling mean {command(s)}` on STS-B sentences from all three splits: {counts['sentences']:,} "
        f"sentences sampled for the sentence-level metrics, alignment over {counts['positive_pairs']:,} STS-B pairs "
        f"scored 4 or more, token metrics over {counts['token_sentences']:,} sentences (last layer in the table). "
        "The trained models are the main table's `simcse` runs on raw-mini (mean pooling, "
        f"with SimCSE's train-only MLP head and with `--head none`), seeds {', '.join(map(str, seeds))}: mean ± sample "
        "std over seeds. The whitened model is raw-mini (mean pooling) whitened on the STS-B train sentences. "
        f"Diagnosing every model took {seconds / 60:.1f} min in all (see the cost table for the machine).",
        "",
        *table(reports),
        "",
        *(f"- {line}" for line in findings(reports)),
        *(["- Whitening transforms only the output, so its token rows (hidden states) are raw-mini's."]
          if "raw-whitened" in reports and "raw-mean" in reports else []),
        "",
        "Per layer, first seed (sentence avg cosine / IsoScore; token baseline; adjusted self-similarity content / "
        "function; adjusted intra-sentence similarity content / function):",
        "",
        *layer_table(reports),
        "",
        "The figures show each trained model's first seed.",
        "",
        f"![cosine histogram]({figs}/geometry_cosine_hist.png)",
        "",
        f"![per layer]({figs}/geometry_layers.png)",
    ]
    return lines


def from_records(folder: Path) -> dict[str, list[dict]]:
    """The reports in committed records (``results/geometry/*.json``), grouped by row, seeds in order; for tests
    and for reading the tables back without the models."""
    out: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("*.json")):
        rec = json.loads(path.read_text())
        if "row" not in rec["key"]:  # a decoder record (:func:`decoder_build`)
            continue
        out.setdefault(rec["key"]["row"], []).append({**rec["value"], "seed": rec["key"]["seed"]})
    order = [row for row, _, _ in MODELS]
    return {row: sorted(out[row], key=lambda r: -1 if r["seed"] is None else r["seed"]) for row in order if row in out}


# ---------------------------------------------------------------------------- decoders: token anisotropy per layer
# (row label, sentences, bidirectional attention): decone-raw-gpt-mini on random STS-B test sentences (seed 0)
DECODER_SETTINGS = [
    ("300 sentences", 300, False),
    ("1,000 sentences", 1000, False),
    ("1,000 sentences, bidirectional switch on", 1000, True),
]
DECODER_PAIRS = 3000


def decoder_anisotropy(folder: str, stsb_test: Path, sentences: int, bidirectional: bool) -> dict:
    """Ethayarajh's (2019) measure on every layer of a decoder (:func:`decone.decoders.token_anisotropy`): the mean
    cosine of random token pairs from different sentences, with all tokens and with each sentence's first token (the
    attention sink) left out. -> {"all_tokens": [per layer], "without_first": [...], "sentences": n}."""
    from transformers import AutoModel, AutoTokenizer

    from decone import decoders

    texts = decoders.read_stsb_sentences(stsb_test, sentences, seed=0)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, use_safetensors=True)
    decoders.ensure_pad_token(tokenizer, model.config)
    with decoders.bidirectional(model, bidirectional):
        stats = decoders.token_anisotropy(model, tokenizer, texts, DECODER_PAIRS, seed=0)
    return {**stats, "sentences": len(texts)}


def decoder_build(records, folder: str, stsb_test: Path) -> dict[str, dict]:
    """Each :data:`DECODER_SETTINGS` row: its committed record, else measured now."""
    out = {}
    for label, n, bidi in DECODER_SETTINGS:
        key = {"model": "decone-raw-gpt-mini", "data": "sts-test", "sentences": n, "bidirectional": bidi,
               "pairs": DECODER_PAIRS, "seed": 0}
        name = f"gpt-mini-{n}{'-bidirectional' if bidi else ''}"
        out[label] = records.get(name, key, lambda n=n, bidi=bidi: decoder_anisotropy(folder, stsb_test, n, bidi))
    return out


def decoder_table(results: dict[str, dict]) -> list[str]:
    """One row a setting and token choice, one column a layer (0 = embeddings)."""
    layers = len(next(iter(results.values()))["all_tokens"])
    head = ["layer 0", *map(str, range(1, layers - 1)), f"{layers - 1} (last)"]
    lines = ["| setting | " + " | ".join(head) + " |", "|---" * (layers + 1) + "|"]
    for label, r in results.items():
        for key, what in (("all_tokens", "all tokens"), ("without_first", "first token left out")):
            lines.append(f"| {label}, {what} | " + " | ".join(f"{v:.3f}" for v in r[key]) + " |")
    return lines


def decoder_findings(results: dict[str, dict], published_last: float) -> list[str]:
    """The last layer against GPT-2's published figure, and what leaving out the first token changes."""
    last = [r[k][-1] for r in results.values() for k in ("all_tokens", "without_first")]
    gaps = [r["without_first"][i] - r["all_tokens"][i] for r in results.values() for i in range(1, len(r["all_tokens"]))]
    return [f"The last layer sits at {min(last):.3f}–{max(last):.3f} across these settings, against {published_last:.3f} "
            "for GPT-2 (Ethayarajh 2019): the stand-in is not GPT-2's cone.",
            f"Leaving out the first token (the attention sink) changes the contextual layers by {min(gaps):+.3f} to "
            f"{max(gaps):+.3f}."]


def decoder_markdown(results: dict[str, dict]) -> list[str]:
    from decone.decoders import ETHAYARAJH_2019

    return [f"decone-raw-gpt-mini, {DECODER_PAIRS:,} random token pairs from different sentences of a random sample "
            "of STS-B test sentences (seed 0), every layer (0 = the embeddings), fp32:", "",
            *decoder_table(results), "", *(f"- {line}" for line in decoder_findings(results, ETHAYARAJH_2019["gpt2"][-1]))]
