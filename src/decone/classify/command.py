"""The ``decone predict`` and ``decone fewshot`` commands; :func:`register` adds them to a Typer app.

(``decone train scl`` goes through the ``train`` command: ``scl`` is a registered method.)
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from decone.errors import ConfigError, DeconeError, check_device, check_output_file
from decone.paths import default_model


def _console(stderr: bool = True):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _fail(exc: DeconeError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


def _numbers(text: str, kind, flag: str) -> list:
    try:
        values = [kind(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected comma-separated {kind.__name__}s, e.g. {'20,100' if kind is int else '0,0.9'}") from None
    if not values:
        raise ConfigError(f"{flag}: no values given")
    return list(dict.fromkeys(values))


def predict_command(
    model: str = typer.Option(..., "--model", "-m", help="A classifier folder written by `decone train scl`"),
    input: str = typer.Option(..., "--input", "-i", help=".csv/.tsv/.jsonl with a text (or sentence1/sentence2) column "
                              "and optional label column; or a text file: one text a line, or text<TAB>label lines"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write predictions as JSONL here [default: stdout]"),
    batch_size: int = typer.Option(64, help="Texts per forward pass"),
    text_column: Optional[str] = typer.Option(None, help="Column holding the text"),
    label_column: Optional[str] = typer.Option(None, help="Column holding gold labels (then accuracy is reported)"),
    encoding: str = typer.Option("utf-8", help="Text encoding of the input"),
    bf16: bool = typer.Option(False, "--bf16/--no-bf16", help="bf16 autocast (fp32 default)"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, ... [default: cuda if available]"),
) -> None:
    """Predict labels and class probabilities with a fine-tuned classifier (one JSON object per input text)."""
    from decone.classify.model import Classifier, read_labelled

    console = _console()
    try:
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
        check_device(device)
        if output:
            check_output_file(output)
        clf = Classifier.load(model, device=device)
        data = read_labelled(input, encoding, text_column, label_column, separator=clf.separator)
        gold = clf.label_indices(data.labels, data.source, data.lines) if data.labels is not None else None
        probs = clf.predict_proba(data.texts, batch_size=batch_size, bf16=bf16)
    except DeconeError as exc:
        _fail(exc)
    pred = probs.argmax(axis=1)
    rows = []
    for i, text in enumerate(data.texts):
        row = {"text": text, "label": clf.labels[pred[i]],
               "probabilities": {name: round(float(p), 6) for name, p in zip(clf.labels, probs[i])}}
        if data.labels is not None:
            row["gold"] = data.labels[i]
        rows.append(json.dumps(row, ensure_ascii=False))
    if output:
        from pathlib import Path

        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        sys.stdout.write("".join(r + "\n" for r in rows))
        sys.stdout.flush()
    line = f"{len(rows):,} predictions"
    if gold is not None:
        line += f", accuracy {100 * float((pred == gold).mean()):.2f}% against the gold labels"
    console.print(line + (f" -> {output}" if output else ""))


def fewshot_command(
    task: str = typer.Option(..., "--task", "-t", help="SST-2 | MR | CR | SUBJ | MPQA | TREC | MRPC"),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help="Model folder or hub name to fine-tune, a fresh copy each run "
                                             "[all-MiniLM-L6-v2]"),
    output: str = typer.Option(..., "--output", "-o", help="Folder for runs.jsonl, results.md and the plots"),
    shots: str = typer.Option("20,100,1000", help="Training-set sizes (class-balanced, all classes together)"),
    seeds: int = typer.Option(5, help="Runs per setting (seeds 0..N-1: the sample, the noise, the initialisation)"),
    noise: str = typer.Option("0", help="Fractions of training labels flipped to another class"),
    lambdas: str = typer.Option("0,0.9", "--lambda", help="SCL weights lambda (0 = cross-entropy only)"),
    epochs: int = typer.Option(10, help="Epochs over the few-shot training set"),
    max_steps: Optional[int] = typer.Option(None, help="Stop each run after this many steps (overrides --epochs)"),
    batch_size: int = typer.Option(16, help="Examples per batch (every class in a batch at least twice)"),
    lr: float = typer.Option(2e-5, help="Peak learning rate (linear decay)"),
    temperature: float = typer.Option(0.3, help="SCL temperature tau"),
    max_length: int = typer.Option(64, help="Truncate texts to this many tokens"),
    pooling: Optional[str] = typer.Option(None, help="Pooling of the features [folder's own, else cls_before_pooler]"),
    warmup_ratio: float = typer.Option(0.0, help="Fraction of steps with linear warm-up"),
    head_init: str = typer.Option("probe", help="The head's start: probe (logistic regression on the frozen features) "
                                                "| random (the paper's)"),
    test_size: int = typer.Option(0, help="Evaluate on a fixed stratified subset of this many test examples (0: all)"),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help="bf16 autocast [default: where supported]"),
    data_dir: Optional[str] = typer.Option(None, help="Data directory in the layout of shared/data [default: $DECONE_DATA, ../shared/data]"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard the runs already in --output"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write accuracy and feature-PCA plots"),
) -> None:
    """Few-shot and label-noise protocol of Gunel et al. 2021: CE vs CE + SCL over shots x noise x lambda x seeds.

    Resumable: rerun the same command and the finished runs (runs.jsonl) are skipped.
    """
    from pathlib import Path

    from decone.classify.fewshot import FewShotConfig, run_grid, rich_table, summarize, write_results

    console = _console()
    try:
        cfg = FewShotConfig(
            task=task, model=model or default_model(), output=output, shots=_numbers(shots, int, "--shots"), seeds=seeds,
            noise=_numbers(noise, float, "--noise"), lambdas=_numbers(lambdas, float, "--lambda"), epochs=epochs,
            max_steps=max_steps, batch_size=batch_size, lr=lr, temperature=temperature, max_length=max_length,
            pooling=pooling, warmup_ratio=warmup_ratio, test_size=test_size, bf16=bf16, data_dir=data_dir,
            head_init=head_init,
            overwrite=overwrite,
        )
        rows = run_grid(cfg, log=lambda msg: console.print(msg, soft_wrap=True))
    except DeconeError as exc:
        _fail(exc)
    command = _command_line(cfg)
    path = write_results(Path(output), cfg, rows, command)
    _console(stderr=False).print(rich_table(summarize(rows), cfg.task))
    made = []
    if plots:
        from decone.classify.plots import make_plots

        made = make_plots(output, rows, cfg.task)
    wall = sum(float(r.get("wall_s", 0.0)) for r in rows)
    console.print(f"{len(rows)} runs ({wall / 60:.1f} min of run time) -> {path}"
                  + (f", {', '.join(p.name for p in made)}" if made else ""))


def _command_line(cfg) -> str:
    parts = ["decone fewshot", f"--task {cfg.task}", f"--model {cfg.model}", f"--output {cfg.output}",
             f"--shots {','.join(map(str, cfg.shots))}", f"--seeds {cfg.seeds}",
             f"--noise {','.join(f'{p:g}' for p in cfg.noise)}", f"--lambda {','.join(f'{x:g}' for x in cfg.lambdas)}",
             f"--epochs {cfg.epochs}", f"--batch-size {cfg.batch_size}", f"--lr {cfg.lr:g}",
             f"--temperature {cfg.temperature:g}", f"--max-length {cfg.max_length}"]
    if cfg.max_steps:
        parts.append(f"--max-steps {cfg.max_steps}")
    if cfg.pooling:
        parts.append(f"--pooling {cfg.pooling}")
    if cfg.warmup_ratio:
        parts.append(f"--warmup-ratio {cfg.warmup_ratio:g}")
    if cfg.test_size:
        parts.append(f"--test-size {cfg.test_size}")
    if cfg.head_init != "probe":
        parts.append(f"--head-init {cfg.head_init}")
    if cfg.bf16 is not None:
        parts.append("--bf16" if cfg.bf16 else "--no-bf16")
    return " ".join(parts)


def register(app: typer.Typer) -> None:
    """Add ``predict`` and ``fewshot`` to ``app``.

    ``fewshot`` is a top-level command so it does not clash with the evaluation package's ``eval TASKS``; the lead
    can route ``decone eval fewshot`` to :func:`fewshot_command`.
    """
    app.command("predict", help="Predict labels and probabilities with a classifier trained by `decone train scl`.")(predict_command)
    app.command("fewshot", help="Few-shot / label-noise fine-tuning protocol: CE vs CE + SCL (Gunel et al. 2021).")(fewshot_command)
