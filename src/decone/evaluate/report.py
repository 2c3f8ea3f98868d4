"""Result tables of ``decone eval``: rich (terminal), markdown, CSV and JSON from the dict of
:func:`decone.evaluate.runner.run`."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass

from decone.evaluate.sts import AGGREGATIONS, STS_YEARS
from decone.evaluate.transfer import TRANSFER_TASKS

FORMATS = ("md", "csv", "json")


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


def fmt(x, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return f"{round(x, digits) + 0.0:.{digits}f}"  # + 0.0: no "-0.00"


def _timing(models: list[dict], group: str) -> str:
    parts = []
    for m in models:
        g = m.get(group)
        if g is None:
            continue
        enc = g.get("encode_seconds")
        if enc is None and "tasks" in g:
            enc = sum(t.get("encode_seconds", 0.0) for t in g["tasks"].values())
        parts.append(f"{m['label']}: {g['seconds']:.1f} s (encoding {enc:.1f} s)")
    return "time " + "; ".join(parts) if parts else ""


def tables(results: dict) -> list[Table]:
    """The tables for the groups present in ``results``: rows are models, columns tasks plus the average."""
    models = results["models"]
    settings = results.get("settings", {})
    prec = "bf16" if settings.get("bf16") else "fp32"
    out: list[Table] = []
    with_sts = [m for m in models if "sts" in m]
    if with_sts:
        tasks = list(with_sts[0]["sts"]["tasks"])
        names = [with_sts[0]["sts"]["tasks"][t]["display"] for t in tasks]
        out.append(Table(
            "STS: Spearman x100 of cosine (STS12-16 'all': subsets concatenated; STS-B, SICK-R test)",
            ["model", *names, "avg"],
            [[m["label"], *(fmt(m["sts"]["tasks"][t]["spearman"]["all"]) for t in tasks), fmt(m["sts"]["avg"]["all"])]
             for m in with_sts],
            f"{prec}; {_timing(with_sts, 'sts')}",
        ))
        years = [t for t in tasks if t in STS_YEARS]
        if years:
            rows = []
            for m in with_sts:
                for agg in AGGREGATIONS:
                    rows.append([m["label"], agg, *(fmt(m["sts"]["tasks"][t]["spearman"][agg]) for t in tasks),
                                 fmt(m["sts"]["avg"][agg])])
            out.append(Table(
                "STS aggregations (Spearman x100): all = one correlation over concatenated subsets (SimCSE), "
                "mean = mean over subsets, wmean = size-weighted mean (SentEval)",
                ["model", "agg", *names, "avg"], rows,
                "STS-B and SICK-R have a single test set, so their three values coincide",
            ))
        out.append(Table(
            "STS: Pearson x100 of cosine (all)",
            ["model", *names, "avg"],
            [[m["label"], *(fmt(m["sts"]["tasks"][t]["pearson"]["all"]) for t in tasks), fmt(m["sts"]["pearson_avg"]["all"])]
             for m in with_sts],
        ))
        warns = sorted({w for m in with_sts for w in m["sts"].get("warnings", [])})
        if warns:
            out[-1].caption = "; ".join(warns)
    with_words = [m for m in models if "words" in m]
    if with_words:
        sets = list(with_words[0]["words"]["sets"])
        short = [with_words[0]["words"]["sets"][s].get("short", s) for s in sets]
        out.append(Table(
            "Word similarity: Spearman x100 of cosine (each word encoded alone)",
            ["model", *short, "avg", "cover%"],
            [[m["label"], *(fmt(m["words"]["sets"][s]["spearman"], 1) for s in sets), fmt(m["words"]["avg"]),
              fmt(m["words"]["coverage"], 1)] for m in with_words],
            f"{prec}; {_timing(with_words, 'words')}",
        ))
    with_tr = [m for m in models if "transfer" in m]
    if with_tr:
        tasks = list(with_tr[0]["transfer"]["tasks"])
        seed = with_tr[0]["transfer"]["seed"]
        mt = settings.get("max_train")
        out.append(Table(
            "Transfer (SentEval): accuracy x100 of logistic regression on frozen embeddings",
            ["model", *tasks, "avg"],
            [[m["label"], *(fmt(m["transfer"]["tasks"][t]["acc"]) for t in tasks), fmt(m["transfer"]["avg"])]
             for m in with_tr],
            f"seed {seed}; 10-fold CV for {', '.join(t for t in tasks if t in ('MR', 'CR', 'SUBJ', 'MPQA')) or '-'}; "
            + (f"training sets subsampled to {mt}; " if mt else "")
            + ("MRPC F1 " + ", ".join(fmt(m['transfer']['tasks']['MRPC'].get('f1')) for m in with_tr) + "; "
               if "MRPC" in tasks else "")
            + _timing(with_tr, "transfer"),
        ))
    return out


def print_rich(results: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    console = console or Console()
    for t in tables(results):
        widths = [max(len(h), *(len(r[i]) for r in t.rows)) for i, h in enumerate(t.headers)]
        needed = sum(w + 3 for w in widths) + 1
        rt = RichTable(title=t.title, caption=t.caption or None, title_justify="left", caption_justify="left")
        for i, h in enumerate(t.headers):
            rt.add_column(h, justify="left" if i == 0 or h == "agg" else "right", no_wrap=True, min_width=widths[i])
        for row in t.rows:
            rt.add_row(*row)
        if needed > console.width and not console.is_terminal:
            # a pipe or a file: never squash numbers to fit 80 columns
            Console(file=console.file, width=needed, force_terminal=False, no_color=console.no_color).print(rt)
        else:
            console.print(rt)


def to_markdown(results: dict) -> str:
    parts = []
    for t in tables(results):
        parts.append(f"**{t.title}**\n")
        parts.append("| " + " | ".join(t.headers) + " |")
        parts.append("|" + "|".join("---" if i == 0 or h == "agg" else "---:" for i, h in enumerate(t.headers)) + "|")
        parts.extend("| " + " | ".join(r) + " |" for r in t.rows)
        if t.caption:
            parts.append(f"\n{t.caption}")
        parts.append("")
    return "\n".join(parts)


def to_csv(results: dict) -> str:
    """One row a model; columns ``group:task`` (STS: Spearman 'all', plus ``:mean`` / ``:wmean`` for STS12-16 and
    the averages), each group's average, and the transfer seed."""
    header = ["model", "source", "pooling"]
    rows = []
    for m in results["models"]:
        row: dict = {"model": m["label"], "source": m["source"], "pooling": m.get("pooling")}
        if "sts" in m:
            for t, r in m["sts"]["tasks"].items():
                row[f"sts:{r['display']}"] = r["spearman"]["all"]
            row["sts:avg"] = m["sts"]["avg"]["all"]
            for agg in ("mean", "wmean"):
                for t, r in m["sts"]["tasks"].items():
                    if t in STS_YEARS:
                        row[f"sts:{r['display']}:{agg}"] = r["spearman"][agg]
                row[f"sts:avg:{agg}"] = m["sts"]["avg"][agg]
            for t, r in m["sts"]["tasks"].items():
                row[f"sts:{r['display']}:pearson"] = r["pearson"]["all"]
        if "words" in m:
            for s, r in m["words"]["sets"].items():
                row[f"words:{s}"] = r["spearman"]
            row["words:avg"] = m["words"]["avg"]
        if "transfer" in m:
            for t, r in m["transfer"]["tasks"].items():
                row[f"transfer:{t}"] = r["acc"]
            row["transfer:avg"] = m["transfer"]["avg"]
            row["transfer:seed"] = m["transfer"]["seed"]
        for k in row:
            if k not in header:
                header.append(k)
        rows.append(row)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def to_json(results: dict) -> str:
    """Strict JSON: NaN (an undefined correlation) is written as null."""
    return json.dumps(_no_nan(results), indent=2, default=_json_default) + "\n"


def _no_nan(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_nan(v) for v in obj]
    return obj


def render(results: dict, fmt_name: str) -> str:
    if fmt_name == "md":
        return to_markdown(results)
    if fmt_name == "csv":
        return to_csv(results)
    if fmt_name == "json":
        return to_json(results)
    raise ValueError(fmt_name)


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


__all__ = ["FORMATS", "Table", "tables", "print_rich", "to_markdown", "to_csv", "to_json", "render", "TRANSFER_TASKS"]
