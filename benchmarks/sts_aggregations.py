"""STS under each aggregation (``all``, ``mean``, ``wmean``; docs/evaluation.md explains them) for the shipped
baseline and raw-mini: the table docs/evaluation.md shows, generated from records rather than retyped.

Built by ``python benchmarks/results.py --only sts-aggregations`` (or a whole invocation): each model's
:func:`decone.evaluate.sts.evaluate_sts` result is recorded in ``results/sts_aggregations/`` (committed), so a fresh
checkout regenerates the table without encoding. bf16 autocast where the CPU has it natively, as ``decone eval``.
"""

from __future__ import annotations

import numpy as np

# (record name, label, which model: "minilm" or "raw", pooling (None: the folder's own)), the table's order
MODELS = [
    ("minilm", "all-MiniLM-L6-v2 (its mean pooling)", "minilm", None),
    ("raw-mean", "decone-raw-mini, mean pooling", "raw", "mean"),
    ("raw-cls", "decone-raw-mini, `cls_before_pooler`", "raw", "cls_before_pooler"),
]
AGGREGATIONS = ("all", "mean", "wmean")


def evaluate(folder: str, pooling: str | None, data: dict) -> dict:
    """Spearman and Pearson x100 of every task under every aggregation, their averages, and the precision used."""
    from decone.encoder import Encoder
    from decone.evaluate import sts
    from decone.encoder.device import resolve_bf16

    encoder = Encoder.load(folder, pooling=pooling)
    result = sts.evaluate_sts(encoder, data=data, bf16=None)
    return {"tasks": {r["display"]: {"spearman": r["spearman"], "pearson": r["pearson"]} for r in result["tasks"].values()},
            "avg": result["avg"], "pearson_avg": result["pearson_avg"], "sentences": result["sentences"],
            "bf16": bool(resolve_bf16(None, encoder.device)), "seconds": round(result["seconds"], 1)}


def build(records, folders: dict[str, str], data: dict) -> dict[str, dict]:
    """Each model's result: its committed record where the key (model, pooling, tasks) matches, else evaluated now."""
    out = {}
    for name, _, which, pooling in MODELS:
        key = {"model": which, "pooling": pooling, "tasks": sorted(data)}
        out[name] = records.get(name, key, lambda which=which, pooling=pooling: evaluate(folders[which], pooling, data))
    return out


def table(results: dict[str, dict]) -> list[str]:
    """One row a model and aggregation (raw-mini's [CLS] with ``all`` only), Spearman x100, the 7 tasks and avg."""
    tasks = list(next(iter(results.values()))["tasks"])
    lines = ["| model | " + " | ".join(tasks) + " | avg |", "|---|" + "---:|" * (len(tasks) + 1)]
    for name, label, _, _ in MODELS:
        if name not in results:
            continue
        r = results[name]
        for agg in (("all",) if name == "raw-cls" else AGGREGATIONS):
            cells = [f"{r['tasks'][t]['spearman'][agg]:.2f}" for t in tasks] + [f"{r['avg'][agg]:.2f}"]
            lines.append(f"| {label}, `{agg}` | " + " | ".join(cells) + " |")
    return lines


def findings(results: dict[str, dict]) -> list[str]:
    """What the table shows, computed from it: how far ``wmean`` and ``all`` part for a calibrated and a raw model."""
    if not {"minilm", "raw-mean"} <= set(results):
        return []
    mini, raw = results["minilm"], results["raw-mean"]
    gaps = {t: v["spearman"]["wmean"] - v["spearman"]["all"] for t, v in raw["tasks"].items()}
    widest = sorted(gaps, key=lambda t: -abs(gaps[t]))[:2]
    out = [f"all-MiniLM-L6-v2, calibrated across domains: avg {mini['avg']['all']:.2f} `all` against "
           f"{mini['avg']['wmean']:.2f} `wmean`. decone-raw-mini (mean pooling), anisotropic: {raw['avg']['all']:.2f} "
           f"`all` against {raw['avg']['wmean']:.2f} `wmean`; the widest gaps are "
           + " and ".join(f"{t} ({raw['tasks'][t]['spearman']['all']:.1f} vs {raw['tasks'][t]['spearman']['wmean']:.1f})"
                          for t in widest) + "."]
    pearson = ", ".join(f"{label.split(' (')[0]} {results[name]['pearson_avg']['all']:.2f}"
                        for name, label, _, _ in MODELS if name in results and name != "raw-cls")
    out.append(f"Pearson (`all`) avg: {pearson}.")
    return out


def markdown(results: dict[str, dict]) -> list[str]:
    precision = {"bf16 autocast" if r["bf16"] else "fp32" for r in results.values()}
    sentences = max(r["sentences"] for r in results.values())
    seconds = float(np.sum([r["seconds"] for r in results.values()]))
    return [f"STS from `../shared`, Spearman x100 of cosine, {' and '.join(sorted(precision))}; {sentences:,} distinct "
            f"sentences a model, {seconds / 60:.1f} min for the three (see RESULTS.md's cost table for the machine).", "",
            *table(results), "", *(f"- {line}" for line in findings(results))]
