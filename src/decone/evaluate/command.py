"""The ``decone eval`` command. The CLI wires it in with ``register(app)``; user errors are raised as
:class:`~decone.errors.DeconeError` for the CLI's main to print as one line (exit code 2)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from decone.errors import ConfigError, check_device, check_output_file

EVAL_HELP = """Evaluate encoders on STS (sts), word similarity (words) and SentEval transfer (transfer).

TASKS is a comma-separated list of sts, words, transfer (or all). Each --model is a decone or sentence-transformers
folder or a Hugging Face encoder; repeat --model to compare models in one table (rows are models).

--pooling: give it once to apply one pooling to every model, or once per model in the order of --model
(write 'default' to keep a model's own pooling).

Data come from --data-dir (the layout of shared/data), else $DECONE_DATA, else ../shared/data.
"""


def eval_command(
    tasks: str = typer.Argument(..., help="Comma-separated: sts, words, transfer (or all)."),
    model: List[str] = typer.Option(..., "--model", "-m", help="Model folder or hub name; repeat for several."),
    pooling: Optional[List[str]] = typer.Option(
        None, "--pooling", "-p",
        help="cls, cls_before_pooler, mean, first_last_avg, mask, last_token, weighted_mean: once for every model, or once per model in order "
             "('default' keeps a model's own)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Data root in the layout of shared/data."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the results to this file."),
    fmt: Optional[str] = typer.Option(
        None, "--format", "-f",
        help="md, csv or json. With --output: the file's format (default from its suffix, else json). Without: "
             "print that format instead of the rich tables."),
    batch_size: int = typer.Option(64, "--batch-size", help="Texts per forward pass (length-sorted batches)."),
    bf16: Optional[bool] = typer.Option(
        None, "--bf16/--no-bf16", help="bf16 autocast; default: on where the CPU/GPU supports it natively."),
    seed: int = typer.Option(1111, "--seed", help="Transfer: CV folds and held-out dev split."),
    transfer_tasks: Optional[str] = typer.Option(
        None, "--transfer-tasks", help="Transfer: comma-separated subset of MR,CR,SUBJ,MPQA,SST2,TREC,MRPC."),
    max_train: Optional[int] = typer.Option(
        None, "--max-train", help="Transfer: subsample training sets to N examples (quick runs; not the standard protocol)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda where available)."),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="CPU threads for torch (default: torch's, one per core). On a machine busy with other "
                                "jobs, 1 can be several times faster than oversubscribed cores."),
) -> None:
    from rich.console import Console

    from decone.evaluate import report, runner

    if fmt is not None and fmt not in report.FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(report.FORMATS)}")
    if max_train is not None and max_train < 20:
        raise ConfigError(f"--max-train must be at least 20, got {max_train}")
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {threads}")
        import torch

        torch.set_num_threads(threads)
    groups = runner.parse_groups(tasks)
    specs = runner.model_specs(model, pooling)
    tt = [t for t in transfer_tasks.split(",") if t.strip()] if transfer_tasks else None
    if tt is not None:
        from decone.evaluate.transfer import resolve_tasks

        resolve_tasks(tt)  # fail on a typo before any work
    check_device(device)
    if output is not None:
        out_fmt = fmt or {".md": "md", ".csv": "csv", ".json": "json"}.get(output.suffix.lower(), "json")
        check_output_file(output)  # before any work: not a folder, and its folder can be made
    err = Console(stderr=True)
    results = runner.run(
        specs, groups, data_dir=data_dir, batch_size=batch_size, bf16=bf16, seed=seed, transfer_tasks=tt,
        max_train=max_train, device=device, log=lambda msg: err.print(msg, style="dim", highlight=False),
    )
    if output is None and fmt is not None:
        typer.echo(report.render(results, fmt), nl=False)
        return
    report.print_rich(results, Console())
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp")
        try:
            tmp.write_text(report.render(results, out_fmt))
            tmp.replace(output)
        finally:
            tmp.unlink(missing_ok=True)
        err.print(f"results written to {output} ({out_fmt})", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``eval`` to a Typer app."""
    app.command("eval", help=EVAL_HELP)(eval_command)
