"""The ``decone export``, ``decone push`` and ``decone card`` commands. The CLI wires them in with
``register(app)``; user errors are raised as :class:`~decone.errors.DeconeError` for the CLI's main to print as one
line (exit code 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from decone.errors import ConfigError

FORMATS = ("onnx",)

EXPORT_HELP = """Export MODEL (a decone or sentence-transformers folder) for serving.

--format onnx writes MODEL/onnx/model.onnx (or DIR/onnx/ with --output DIR, a copy of the folder without its training
checkpoint) in the layout sentence-transformers reads: SentenceTransformer(MODEL, backend="onnx") loads it without
exporting again, and `decone encode --backend onnx` encodes through it. Pooling, dense layers and normalisation stay
outside the graph. --quantize int8 also writes a dynamically quantised copy for this CPU
(onnx/model_qint8_avx512_vnni.onnx, model_quint8_avx2.onnx, ...: sentence-transformers' names and settings); name an
architecture (arm64, avx2, avx512, avx512_vnni) to build for another CPU.
"""

PUSH_HELP = """Upload MODEL to the Hugging Face Hub as REPO_ID (user/name or org/name).

Writes a model card (README.md) first where the folder has none, then uploads everything except checkpoint/, runs/
and hidden files. --dry-run lists the files without network or token. Needs a write token (`hf auth login` or HF_TOKEN).
"""

CARD_HELP = """Write MODEL/README.md: a Hugging Face model card from MODEL/decone.json (method and paper with BibTeX, every
training setting, data with sha256, training time, evaluation, usage). --eval merges `decone eval --output` JSON results.
"""


def export_command(
    model: str = typer.Argument(..., help="Model folder (decone or sentence-transformers)."),
    fmt: str = typer.Option("onnx", "--format", "-f", help="Export format: onnx."),
    quantize: Optional[str] = typer.Option(
        None, "--quantize", "-q", help="int8 (this CPU), or an architecture: arm64, avx2, avx512, avx512_vnni."),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Write a servable copy of the folder here instead of into MODEL."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset (18 or later)."),
) -> None:
    from decone.export import export_onnx, resolve_quantize

    if fmt.lower() not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if opset < 18:
        raise ConfigError(f"--opset must be 18 or later (torch's ONNX exporter), got {opset}")
    resolve_quantize(quantize)  # a typo fails before the model loads
    files = export_onnx(model, quantize=quantize, output=output, opset=opset)
    root = Path(output) if output is not None else Path(model)
    for f in files:
        typer.echo(f"wrote {f} ({f.stat().st_size / 1e6:.1f} MB)")
    typer.echo(f'load with: SentenceTransformer("{root}", backend="onnx")'
               + (f', model_kwargs={{"file_name": "onnx/{files[-1].name}"}}' if len(files) > 1 else ""))


def push_command(
    model: str = typer.Argument(..., help="Model folder."),
    repo_id: str = typer.Argument(..., help="Hub repository: user/name or org/name."),
    private: bool = typer.Option(False, "--private", help="Create the repository private."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the files that would be uploaded; upload nothing."),
) -> None:
    from decone.hub import push

    files = push(model, repo_id, private=private, dry_run=dry_run)
    if dry_run:
        for f in files:
            typer.echo(f)
        typer.echo(f"dry run: {len(files)} files would be uploaded to {repo_id}")
    else:
        typer.echo(f"pushed {len(files)} files to https://huggingface.co/{repo_id}")


def card_command(
    model: str = typer.Argument(..., help="Model folder written by `decone train`."),
    eval_results: Optional[Path] = typer.Option(
        None, "--eval", help="`decone eval ... --output results.json` to merge into the card."),
    repo_id: Optional[str] = typer.Option(None, "--repo-id", help="Hub id used in the card's usage snippets."),
) -> None:
    from decone.card import update_card, write_card

    if eval_results is not None:
        if not eval_results.is_file():
            raise ConfigError(f"--eval {eval_results}: no such file")
        path = update_card(model, eval_results, repo_id=repo_id)
    else:
        path = write_card(model, repo_id=repo_id)
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add ``export``, ``push`` and ``card`` to a Typer app."""
    app.command("export", help=EXPORT_HELP)(export_command)
    app.command("push", help=PUSH_HELP)(push_command)
    app.command("card", help=CARD_HELP)(card_command)
