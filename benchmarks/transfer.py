"""Classification transfer (SentEval's MR, CR, SUBJ, MPQA, SST-2, TREC, MRPC; docs/evaluation.md gives the protocol)
of the shipped baseline, all-MiniLM-L6-v2: the table docs/evaluation.md shows, generated from a record rather than
retyped.

Built by ``python benchmarks/results.py --only transfer`` (or a whole invocation): the result of
:func:`decone.evaluate.transfer.evaluate_transfer` is recorded in ``results/transfer/`` (committed), so a fresh
checkout regenerates the table without encoding. bf16 autocast where the CPU has it natively, as ``decone eval``.
"""

from __future__ import annotations

SEED = 1111  # SentEval's
MODELS = [("minilm", "all-MiniLM-L6-v2")]
DISPLAY = {"SST2": "SST-2"}  # task names as papers print them


def evaluate(folder: str, seed: int = SEED) -> dict:
    """Accuracy (and MRPC's F1) of every task, x100, the average, the precision and the time it took."""
    from decone.encoder import Encoder
    from decone.encoder.device import resolve_bf16
    from decone.evaluate.transfer import evaluate_transfer

    encoder = Encoder.load(folder)
    result = evaluate_transfer(encoder, bf16=None, seed=seed)
    tasks = {name: {k: r[k] for k in ("acc", "f1", "n_train", "n_test", "encode_seconds", "seconds") if k in r}
             for name, r in result["tasks"].items()}
    return {"tasks": tasks, "avg": result["avg"], "seed": seed, "bf16": bool(resolve_bf16(None, encoder.device)),
            "seconds": round(result["seconds"], 1)}


def build(records, folders: dict[str, str]) -> dict[str, dict]:
    """Each model's result: its committed record where the key (model, seed) matches, else evaluated now."""
    return {name: records.get(name, {"model": name, "seed": SEED}, lambda name=name: evaluate(folders[name]))
            for name, _ in MODELS}


def table(results: dict[str, dict]) -> list[str]:
    tasks = list(next(iter(results.values()))["tasks"])
    lines = ["| model | " + " | ".join(DISPLAY.get(t, t) for t in tasks) + " | avg |", "|---|" + "---:|" * (len(tasks) + 1)]
    for name, label in MODELS:
        if name not in results:
            continue
        r = results[name]
        cells = [f"{r['tasks'][t]['acc']:.2f}" + (f" (F1 {r['tasks'][t]['f1']:.2f})" if r["tasks"][t].get("f1") is not None
                                                  else "") for t in tasks]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {r['avg']:.2f} |")
    return lines


def markdown(results: dict[str, dict]) -> list[str]:
    r = next(iter(results.values()))
    encode = sum(t.get("encode_seconds", 0.0) for t in r["tasks"].values())
    return [f"`decone eval transfer`, seed {r['seed']}, {'bf16 autocast' if r['bf16'] else 'fp32'}: "
            f"{r['seconds'] / 60:.1f} min in all, {encode / 60:.1f} min of it encoding (see RESULTS.md's cost table "
            "for the machine). Accuracy x100 on each task's test set (MR, CR, SUBJ, MPQA: 10-fold cross-validation).",
            "", *table(results)]
