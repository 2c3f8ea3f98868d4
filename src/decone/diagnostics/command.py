"""The ``decone diagnose`` and ``decone whiten`` commands; :func:`register` adds them to a Typer app."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from decone.errors import DeconeError


def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _fail(exc: DeconeError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


def diagnose_command(
    model: list[str] = typer.Option(..., "--model", "-m", help="Model folder or hub name (repeat to compare models)"),
    data: Optional[str] = typer.Option(
        None, "--data", "-d",
        help="STS-B folder, STS-B .csv, or .txt with one sentence per line (default: the data dir's sts/STSBenchmark)"),
    output: str = typer.Option(..., "--output", "-o", help="Folder for diagnostics.json and the PNG plots"),
    pooling: Optional[str] = typer.Option(None, help="Override the models' pooling (cls, cls_before_pooler, mean, first_last_avg, mask, "
                                                        "last_token, weighted_mean)"),
    label: list[str] = typer.Option([], "--label", help="Name of each model in the table and plots (one per --model)"),
    sample: int = typer.Option(5000, help="Sentences sampled for the sentence-level metrics and uniformity"),
    pairs: int = typer.Option(10000, help="Random sentence pairs for the average cosine and its histogram"),
    token_sample: int = typer.Option(500, help="Sentences sampled for the token-level metrics (0: skip)"),
    seed: int = typer.Option(0, help="Seed of every sample"),
    batch_size: int = typer.Option(64, help="Texts per forward pass"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, ... (default: cuda if available)"),
) -> None:
    """Anisotropy diagnostics of one or more encoders: diagnostics.json, plots and a comparison table."""
    from decone.diagnostics.report import diagnose, summary_table

    console = _console()
    try:
        doc, paths = diagnose(
            model, output, data=data, pooling=pooling, labels=label or None, sample_size=sample, n_pairs=pairs,
            token_sample=token_sample, seed=seed, batch_size=batch_size, device=device,
            show_progress=None if sys.stderr.isatty() else False, log=lambda msg: console.print(msg, soft_wrap=True),
        )
    except DeconeError as exc:
        _fail(exc)
    _console_out().print(summary_table(doc["models"]))
    console.print(f"wrote {', '.join(p.name for p in paths)} to {output}")


def _console_out():
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def whiten_command(
    model: str = typer.Option(..., "--model", "-m", help="Model folder or hub name"),
    data: str = typer.Option(..., "--data", "-d", help="Sentences to fit on: .txt (one a line), or STS-B .csv / folder"),
    output: str = typer.Option(..., "--output", "-o", help="Folder for the whitened model"),
    dim: Optional[int] = typer.Option(None, "--dim", "-k", help="Keep the top-k whitened dimensions (default: every direction with non-zero variance)"),
    pooling: Optional[str] = typer.Option(None, help="Override the model's pooling"),
    batch_size: int = typer.Option(64, help="Texts per forward pass"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, ... (default: cuda if available)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --output folder that already holds files"),
) -> None:
    """BERT-whitening (Su et al. 2021): fit mean and W on --data, save a model that applies them."""
    from decone.whiten import whiten

    console = _console()
    try:
        info = whiten(model, data, output, dim=dim, pooling=pooling, batch_size=batch_size, device=device,
                      show_progress=None if sys.stderr.isatty() else False,
                      log=lambda msg: console.print(msg, soft_wrap=True), overwrite=overwrite)
    except DeconeError as exc:
        _fail(exc)
    for warning in info["warnings"]:
        console.print(f"warning: {warning}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``diagnose`` and ``whiten`` to ``app``."""
    app.command("diagnose")(diagnose_command)
    app.command("whiten")(whiten_command)
