"""The ``decone`` command line.

Every user error prints one line, ``error: <file:line or field>: <what is wrong>``, and exits with code 2; nothing is
left half-written. Ctrl-C during training saves a checkpoint and exits with code 130.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from decone.errors import DeconeError, check_output_file
from decone.paths import DEFAULT_MODEL_HUB, default_model  # noqa: F401  (decone.cli.default_model is public)

app = typer.Typer(
    name="decone",
    help="Contrastive learning for sentence and word encoders, evaluation and anisotropy diagnostics.",
    no_args_is_help=False,  # a bare `decone` is a usage error: usage line and one `error:` line naming the commands
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True, highlight=False)


def _method_help() -> str:
    from decone.methods import METHODS

    return "; ".join(f"{m.name}: {m.summary}" for m in METHODS.values())


def _method_names() -> str:
    """The registry's names without importing it (and torch): each file in decone/methods registers one method,
    named as the file with - for _ (tests/test_method_registry.py holds the registry to that)."""
    import importlib.util
    import pkgutil

    spec = importlib.util.find_spec("decone.methods")
    names = sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(spec.submodule_search_locations))
    first = ["simcse", "simcse-sup", "mirror", "mirror-word", "scl"]
    return " | ".join([n for n in first if n in names] + [n for n in names if n not in first])


@app.command(help="Train an encoder with a contrastive METHOD; --set NAME=VALUE sets any setting, a method's own too.")
def train(
    method: str = typer.Argument(..., help=_method_names()),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Local folder or hub name [default: all-MiniLM-L6-v2]"),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Training file (.txt/.csv/.tsv/.jsonl) or SNLI folder; mirror-word defaults to wordfreq's top 10k English words"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Output folder [default: runs/METHOD-TIMESTAMP]"),
    epochs: Optional[int] = typer.Option(None, help="Epochs [method default]"),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps (overrides --epochs)"),
    batch_size: Optional[int] = typer.Option(None, help="Examples per batch (in-batch negatives; under torchrun the global batch over all processes) [method default]"),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate [method default]"),
    temperature: Optional[float] = typer.Option(None, help="Softmax temperature of the contrastive loss [method default]"),
    pooling: Optional[str] = typer.Option(None, help="cls | cls_before_pooler | mean | first_last_avg | mask | last_token | weighted_mean (the last two made for decoders) "
                                                        "[folder's own, else method default]"),
    template: Optional[str] = typer.Option(None, help='mask pooling: prompt around each text, e.g. \'This sentence : "[X]" means [MASK] .\' [promptbert default]'),
    head: Optional[str] = typer.Option(None, help="none | mlp-train (SimCSE MLP in training only) | mlp (kept) [method default]"),
    max_length: Optional[int] = typer.Option(None, help="Truncate texts to this many tokens [method default]"),
    hard_negative_weight: Optional[float] = typer.Option(None, help="simcse-sup: log-scale weight on hard negatives"),
    mask_span: Optional[int] = typer.Option(None, help="mirror: characters masked in one view"),
    scl_lambda: Optional[float] = typer.Option(None, "--lambda", "--scl-lambda", help="scl: weight of SupCon in (1-lambda)*CE + lambda*SupCon [0.9]"),
    seed: int = typer.Option(42, help="Random seed (data order, dropout, masking)"),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help="bf16 autocast [default: on where the CPU/GPU supports it]"),
    warmup_ratio: float = typer.Option(0.0, help="Fraction of steps with linear warm-up"),
    weight_decay: float = typer.Option(0.0, help="AdamW weight decay"),
    max_grad_norm: float = typer.Option(1.0, help="Gradient clipping (0 disables)"),
    group_by_length: bool = typer.Option(True, "--group-by-length/--no-group-by-length", help="Batch texts of similar length"),
    eval_data: Optional[str] = typer.Option(None, help="Dev file of (s1, s2, score), e.g. sts-dev.csv; keeps the best checkpoint"),
    eval_every: int = typer.Option(125, help="Evaluate on --eval-data every N steps"),
    save_every: int = typer.Option(250, help="Write a checkpoint every N steps"),
    log_every: int = typer.Option(10, help="Write a train_log.jsonl row every N steps"),
    diagnose_every: int = typer.Option(0, help="Probe isotropy + STS-B dev every N steps into train_log.jsonl and plot dynamics.png (0: off; 50 or more recommended: one probe costs about 1-2.5 steps)"),
    mini_batch_size: int = typer.Option(0, help="GradCache: backpropagate in mini-batches of this size (0: off)"),
    max_memory: Optional[str] = typer.Option(None, help="Memory budget, e.g. 4GB: GradCache mini-batches are chosen to fit it (exact) [70% of the memory free at start]"),
    fast_dropout: Optional[bool] = typer.Option(None, "--fast-dropout/--torch-dropout", help="On CPU, draw dropout masks from a quarter of torch's random numbers (same distribution, p rounded to 1/65536; faster steps) or use torch's own dropout [fast; on --resume: as the run started]"),
    adaptive_threads: bool = typer.Option(True, "--adaptive-threads/--fixed-threads", help="On CPU, use fewer threads while other processes keep cores busy and take them back when they stop, or keep torch's thread count [adaptive]"),
    encoding: str = typer.Option("utf-8", help="Text encoding of the data file"),
    text_column: Optional[str] = typer.Option(None, help="Column holding the text in .csv/.tsv/.jsonl data"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --output from its checkpoint"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --output folder"),
    attention: Optional[str] = typer.Option(None, help="Decoders: causal | bidirectional attention (LLM2Vec's switch)"),
    lora_r: Optional[int] = typer.Option(None, help="LoRA rank (needs peft; 0: train every weight) [method default]"),
    lora_alpha: Optional[float] = typer.Option(None, help="LoRA alpha [2 x rank]"),
    lora_targets: Optional[str] = typer.Option(None, help="LoRA target modules, comma-separated [the family's default]"),
    lora_save: str = typer.Option("merged", help="LoRA: save the adapters merged into the weights, or the adapter alone with its base's path (merged | adapter)"),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Also log every train_log.jsonl row to TensorBoard under OUTPUT/runs (pip install -e '.[export]')"),
    keep_checkpoint: bool = typer.Option(False, "--keep-checkpoint", help="Keep checkpoint/ (optimizer state) in the finished folder, to train further with --resume"),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Allow pickle .bin weights (loaded with weights_only=True)"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run the model repository's own code"),
    extra: list[str] = typer.Option([], "--set", help="Method-specific setting KEY=VALUE (repeatable)"),
) -> None:
    from decone.methods import METHODS
    from decone.train import TrainConfig, fit, parse_settings

    if output is None:
        output = str(Path("runs") / f"{method}-{time.strftime('%Y%m%d-%H%M%S')}")
    values = {k: v for k, v in locals().items() if k in TrainConfig.__dataclass_fields__}
    values["model"] = model or default_model()
    settings = parse_settings(extra, method) if method in METHODS else {}
    values["options"] = settings.pop("options", {})
    values.update(settings)
    config = TrainConfig(**values)
    callbacks = []
    if diagnose_every:
        callbacks.append(_dynamics_callback(config))
    if tensorboard:
        from decone.tensorboard import TensorBoardCallback  # optional dependency

        callbacks.append(TensorBoardCallback())
    summary = fit(config, callbacks=callbacks, console=console)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    line = (f"[green]done:[/] {summary['steps']} steps in {summary['wall_time_s']:.1f} s, "
            f"{summary['sentences_per_s']:,.0f} sentences/s, final loss {summary['final_loss']:.4f}")
    if summary.get("best_eval_spearman") is not None:
        line += f", best dev Spearman {summary['best_eval_spearman']:.2f} at step {summary['best_step']}"
    console.print(line)
    console.print(f"saved to {output}")


def _dynamics_callback(config):
    from decone.diagnostics.dynamics import make_dynamics_callback

    return make_dynamics_callback(config)


@app.command(help="Embed every line of a text file and save the matrix as .npy (rows follow the non-blank lines).")
def encode(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model folder or hub name [default: all-MiniLM-L6-v2]"),
    input: str = typer.Option(..., "--input", "-i", help="Text file, one sentence per line (or .csv/.tsv/.jsonl)"),
    output: str = typer.Option(..., "--output", "-o", help="Output .npy file"),
    batch_size: int = typer.Option(64, help="Texts per forward pass"),
    pooling: Optional[str] = typer.Option(None, help="Override the model's pooling"),
    max_length: Optional[int] = typer.Option(None, help="Truncate to this many tokens"),
    normalize: bool = typer.Option(False, "--normalize", help="L2-normalise each embedding"),
    bf16: bool = typer.Option(False, "--bf16/--no-bf16", help="bf16 autocast (faster on CPUs with bf16; fp32 default)"),
    encoding: str = typer.Option("utf-8", help="Text encoding of the input"),
    text_column: Optional[str] = typer.Option(None, help="Column holding the text in .csv/.tsv/.jsonl"),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Allow pickle .bin weights (weights_only=True)"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code"),
    backend: str = typer.Option("torch", "--backend", help="torch | onnx | onnx-int8 (the folder's `decone export`)"),
) -> None:
    import numpy as np

    from decone.data import read_dataset
    from decone.encoder import Encoder
    from decone.errors import ConfigError

    if not output.endswith(".npy"):
        raise ConfigError(f"--output {output}: must end in .npy")
    check_output_file(output)
    data = read_dataset(input, "sentences", columns={"text": text_column} if text_column else None, encoding=encoding) \
        if Path(input).suffix.lower() in (".csv", ".tsv", ".jsonl") else _read_lines_for_encode(input, encoding)
    if backend not in ("torch", "onnx", "onnx-int8"):
        raise ConfigError(f"--backend {backend!r}: choose torch, onnx or onnx-int8")
    enc = Encoder.load(model or default_model(), pooling=pooling, max_length=max_length, allow_pickle=allow_pickle,
                       trust_remote_code=trust_remote_code, backend="onnx" if backend.startswith("onnx") else "torch",
                       onnx_file="int8" if backend == "onnx-int8" else None)
    t0 = time.perf_counter()
    emb = enc.encode([ex[0] for ex in data.examples], batch_size=batch_size, normalize=normalize, bf16=bf16,
                     show_progress=len(data) > 1000)
    seconds = time.perf_counter() - t0
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.npy")
    np.save(tmp, emb)
    os.replace(tmp, out)
    note = f" ({data.skipped_blank} blank lines skipped)" if data.skipped_blank else ""
    console.print(f"encoded {len(data):,} texts{note} -> {output} {emb.shape} in {seconds:.1f} s "
                  f"({len(data) / max(seconds, 1e-9):,.0f} sentences/s)")


def _read_lines_for_encode(path: str, encoding: str):
    from decone.data import read_lines

    data = read_lines(path, encoding)
    for w in data.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    return data


def _register_plugins() -> None:
    """Commands that live beside their subsystems (evaluation, diagnostics, classifiers, sweeps)."""
    import importlib

    for module in ("decone.evaluate.command", "decone.diagnostics.command", "decone.classify.command",
                   "decone.sweep", "decone.export_command"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that subsystem is not installed in this build
            raise
        mod.register(app)


_register_plugins()


def _click_kind(exc: BaseException) -> str | None:
    """``"exit"``, ``"abort"``, ``"usage"`` or ``"click"`` for click's exceptions, else None.

    Matched by class name along the MRO, so click's own classes and the copies that typer vendors (typer 0.29 raises
    ``typer._click.exceptions.NoSuchOption``) are handled alike, whichever release is installed."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "Exit" in names and hasattr(exc, "exit_code") and "ClickException" not in names:
        return "exit"
    if "Abort" in names:
        return "abort"
    if "UsageError" in names:
        return "usage"
    if "ClickException" in names:
        return "click"
    return None


def _print_usage_error(exc) -> None:
    """click's usage line, its hint, and ``error: <message>`` (one line, no traceback)."""
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        console.print(ctx.get_usage(), soft_wrap=True, markup=False)
        if ctx.command.get_help_option(ctx) is not None:
            console.print(f"Try '{ctx.command_path} --help' for help.", soft_wrap=True, markup=False)
    message = " ".join(str(exc.format_message()).split())
    if message in ("", "Missing command.") and ctx is not None and hasattr(ctx.command, "list_commands"):
        message = f"missing command; choose one of {', '.join(ctx.command.list_commands(ctx))}"
    console.print(f"error: {message}", soft_wrap=True, markup=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line and exit code 2."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["eval", "fewshot"]:  # `decone eval fewshot` is the few-shot protocol's command
        argv = ["fewshot", *argv[2:]]
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="decone")
    except DeconeError as exc:
        console.print(f"[red]error:[/] {exc}" if sys.stderr.isatty() else f"error: {exc}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except OSError as exc:  # disk full, permission denied, ...: name the file, no traceback
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        console.print(f"error: {where}{exc.strerror or exc}", soft_wrap=True)
        sys.exit(2)
    except Exception as exc:
        kind = _click_kind(exc)
        if kind == "exit":
            sys.exit(exc.exit_code)
        if kind == "abort":
            console.print("aborted")
            sys.exit(130)
        if kind in ("usage", "click"):
            _print_usage_error(exc)
            sys.exit(2)
        raise
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
