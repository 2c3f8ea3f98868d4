"""Export an encoder to ONNX, in the layout sentence-transformers' ONNX backend reads.

``export_onnx(folder)`` writes ``folder/onnx/model.onnx``: the transformer alone, inputs ``input_ids``,
``attention_mask`` (and ``token_type_ids`` where the model takes them), int64 of shape (batch_size, sequence_length),
output ``last_hidden_state`` (batch_size, sequence_length, hidden), plus ``pooler_output`` (batch_size, hidden) for a
``cls``-pooled model with a pooler. Pooling, dense layers and normalisation stay outside the graph, as in
sentence-transformers, so ``SentenceTransformer(folder, backend="onnx")`` loads the file without exporting again and
``decone.onnx_backend`` reuses decone's own pooling.

``quantize="int8"`` also writes a dynamically quantised copy named as sentence-transformers'
``export_dynamic_quantized_onnx_model`` names it, ``onnx/model_<weights>_<arch>.onnx``, with the same ONNX Runtime
settings (per-channel, symmetric weights, QOperator/IntegerOps, full range): ``model_qint8_arm64.onnx``,
``model_quint8_avx2.onnx``, ``model_qint8_avx512.onnx`` or ``model_qint8_avx512_vnni.onnx``. ``"int8"`` picks this CPU's
architecture; an architecture name picks that one.

The graph is traced with ``torch.onnx.export(dynamo=True)`` (needs ``onnxscript``) with eager attention; the
TorchScript exporter (``dynamo=False``) mis-traces transformers 5's attention mask (wrong outputs on padded batches).
The export is checked against torch on padded batches before it is kept.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from decone.errors import ConfigError, DeconeError, ModelError
from decone.onnx_layout import (  # noqa: F401  (the layout's names, importable from here too)
    ONNX_DIR, ONNX_FILE, QUANT_ARCHS, cpu_arch, needs_all_layers, onnx_files, quantized_file_name, require_onnx)

QUANTIZE_CHOICES = ("int8", *QUANT_ARCHS)
#: below this many bytes of weights the graph is one file; above, weights go to ``model.onnx_data`` (protobuf's 2 GB)
_EXTERNAL_DATA_BYTES = 1_800_000_000
#: a fp32 export must reproduce torch's token states to this cosine (worst token) on the check batches
VERIFY_MIN_COSINE = 0.9999
_CHECK_TEXTS = (
    "A man is playing a guitar on the stage.",
    "hi",
    "The quick brown fox jumps over the lazy dog, and then it runs far away into the woods.",
    "Two dogs play in the snow.",
)
_SKIP_ON_COPY = {"checkpoint", "runs", ONNX_DIR}


def resolve_quantize(quantize: str | None) -> str | None:
    """``None`` -> None; ``"int8"`` -> this CPU's architecture; an architecture name -> itself."""
    if quantize is None:
        return None
    q = quantize.strip().lower().replace("-", "_")
    if q in ("int8", "qint8", "quint8"):
        return cpu_arch()
    if q.startswith("int8_"):
        q = q[5:]
    if q not in QUANT_ARCHS:
        raise ConfigError(f"--quantize {quantize!r}: choose one of {', '.join(QUANTIZE_CHOICES)}")
    return q


def export_onnx(
    folder: str | os.PathLike,
    quantize: str | None = None,
    output: str | os.PathLike | None = None,
    opset: int = 18,
    verify: bool = True,
) -> list[Path]:
    """Export a decone or sentence-transformers folder to ONNX.

    Args:
        folder: the model folder (``decone.json`` or ``modules.json`` give its pooling).
        quantize: ``None`` (fp32 only), ``"int8"`` (also an int8 copy for this CPU) or one of arm64, avx2, avx512,
            avx512_vnni.
        output: write a copy of the model folder here (without ``checkpoint/`` and ``runs/``) and the ONNX files in
            its ``onnx/``; default: ``folder/onnx/``. Nothing is written there unless the export succeeds and
            passes its check.
        opset: the ONNX opset (18 is the exporter's lowest).
        verify: compare the fp32 graph with torch on padded batches; a mismatch raises :class:`ModelError`.

    Returns:
        The written files, fp32 first.

    Raises:
        ModelError: the folder does not load, or its pooling cannot be served from one graph (``first_last_avg``).
        DeconeError: the ``export`` extra (onnx, onnxruntime, onnxscript) is not installed.
    """
    from decone.encoder import Encoder

    arch = resolve_quantize(quantize)
    require_onnx()
    src = Path(folder)
    enc = Encoder.load(src, device="cpu")
    if needs_all_layers(enc):
        raise ModelError(
            f"{src}: pooling {enc.pooling!r} reads two hidden layers and cannot be exported as one ONNX graph "
            "(sentence-transformers' ONNX backend reads last_hidden_state only); use cls, cls_before_pooler or mean")
    target = src if output is None else Path(output)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--output {target}: is a file, expected a folder")
    made = [p for p in (target, *target.parents) if not p.exists()]  # what a failure must remove again (outermost last)
    # built in a staging folder beside the target and moved into place only once checked (and quantised), so that
    # a failed export leaves no graph behind (an unchecked model.onnx would be picked up by `--backend onnx`) and
    # no half-made copy of the folder
    anchor = next(parent for parent in (target, *target.parents) if parent.exists())
    staging = Path(tempfile.mkdtemp(prefix=".decone-export-", dir=anchor))
    try:
        staged = [staging / ONNX_FILE]
        _export_fp32(enc, staged[0], opset)
        try:
            if verify:
                check_onnx(enc, staged[0])
            if arch is not None:
                staged.append(quantize_onnx(staged[0], arch))
        except ModelError as exc:  # it names the staged file, which is removed below: name the model instead
            reason = str(exc).removeprefix(f"{staged[0]}: ").replace(str(staged[0]), "the graph")
            raise ModelError(f"{src}: ONNX export not kept, nothing was written: {reason}") from None
        try:
            if target.resolve() != src.resolve():
                _copy_folder(src, target)
            onnx_dir = target / ONNX_DIR
            onnx_dir.mkdir(parents=True, exist_ok=True)
            for f in sorted(staging.iterdir()):  # the graphs and any external-data files beside them
                shutil.move(str(f), str(onnx_dir / f.name))
        except BaseException:
            if made:  # the copy (and the folders above it) this call created; nothing that was there before
                shutil.rmtree(made[-1], ignore_errors=True)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [onnx_dir / f.name for f in staged]


def _export_fp32(enc, path: Path, opset: int) -> None:
    model = enc.model
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "config"):
        raise ModelError("export needs the torch transformer (load the encoder with the torch backend)")
    with_pooler = enc.pooling == "cls" and getattr(model, "pooler", None) is not None
    names = input_names_for(model, enc.tokenizer)
    previous_attn = getattr(model.config, "_attn_implementation", None)
    if hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation("eager")  # traces to plain MatMul/Softmax that ORT fuses and quantises
        except Exception:  # noqa: BLE001 - keep the model's own attention where it cannot switch
            previous_attn = None
    wrapper = _ExportWrapper(model, names, with_pooler).eval()
    feats = enc.tokenize(list(_CHECK_TEXTS[:2]))  # two lengths: padding in the example batch
    args = tuple(_example_input(name, feats) for name in names)
    batch, seq = torch.export.Dim("batch_size"), torch.export.Dim("sequence_length")
    dynamic = {name: {0: batch, 1: seq} for name in names}
    outputs = ["last_hidden_state", *(["pooler_output"] if with_pooler else [])]
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    big = n_bytes > _EXTERNAL_DATA_BYTES
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(
                wrapper, args, str(tmp), dynamo=True, input_names=list(names), output_names=outputs,
                dynamic_shapes=dynamic, opset_version=opset, external_data=big, optimize=True, verbose=False,
            )
        if big:
            import onnx

            proto = onnx.load(str(tmp))  # reads the exporter's weight file; rewrite under optimum's name
            onnx.save_model(proto, str(tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=f"{path.name}_data")
            os.replace(tmp.with_name(f"{path.name}_data"), path.with_name(f"{path.name}_data"))
        os.replace(tmp, path)
    except DeconeError:
        raise
    except Exception as exc:  # the exporter's own errors are long; one line for the user
        raise ModelError(f"ONNX export of {getattr(enc, 'source', 'the model')} failed: {_one_line(exc)}") from None
    finally:
        for leftover in (tmp, tmp.with_name(f"{tmp.name}.data")):
            if leftover.exists():
                leftover.unlink()
        if previous_attn is not None:
            with contextlib.suppress(Exception):
                model.set_attn_implementation(previous_attn)


def input_names_for(model, tokenizer) -> tuple[str, ...]:
    """input_ids, attention_mask, and token_type_ids where both the model and its tokenizer use them."""
    import inspect

    names = ["input_ids", "attention_mask"]
    takes = "token_type_ids" in inspect.signature(model.forward).parameters
    if takes and "token_type_ids" in getattr(tokenizer, "model_input_names", ["token_type_ids"]):
        names.append("token_type_ids")
    return tuple(names)


def _example_input(name: str, feats: dict):
    if name == "token_type_ids":
        return torch.zeros_like(feats["input_ids"])
    return feats[name]


class _ExportWrapper(torch.nn.Module):
    """Positional inputs in a fixed order -> last_hidden_state (and pooler_output): the graph's signature."""

    def __init__(self, model, names, with_pooler: bool):
        super().__init__()
        self.model = model
        self.names = tuple(names)
        self.with_pooler = with_pooler

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        out = self.model(**{k: feeds[k] for k in self.names}, return_dict=True)
        if self.with_pooler:
            return out.last_hidden_state, out.pooler_output
        return out.last_hidden_state


def check_onnx(enc, path: Path, min_cosine: float = VERIFY_MIN_COSINE) -> float:
    """Run the graph and torch on padded batches; return the worst cosine over real tokens (and pooler rows).

    Raises:
        ModelError: the worst cosine is below ``min_cosine``.
    """
    from decone.onnx_backend import OnnxTransformer

    ort_model = OnnxTransformer(path, enc.model.config, threads=1)
    worst = 1.0
    for texts in (_CHECK_TEXTS, _CHECK_TEXTS[1:2]):
        feats = enc.tokenize(list(texts))
        with torch.no_grad():
            ref = enc.model(**feats, return_dict=True)
            got = ort_model(**feats)
        mask = feats["attention_mask"].bool()
        a, b = ref.last_hidden_state[mask], got.last_hidden_state[mask]
        worst = min(worst, float(torch.nn.functional.cosine_similarity(a, b, dim=-1).min()))
        if got.pooler_output is not None and getattr(ref, "pooler_output", None) is not None:
            worst = min(worst, float(torch.nn.functional.cosine_similarity(ref.pooler_output, got.pooler_output).min()))
    if not np.isfinite(worst) or worst < min_cosine:
        raise ModelError(f"{path}: the ONNX graph does not reproduce the torch model (worst token cosine {worst:.6f} "
                         f"< {min_cosine}); do not serve it")
    return worst


def quantize_onnx(fp32: str | os.PathLike, arch: str = "avx2") -> Path:
    """Dynamic int8 quantisation with sentence-transformers' preset for ``arch``; writes ``model_<w>_<arch>.onnx``
    beside ``fp32`` and returns its path."""
    import onnx
    from onnxruntime.quantization import QuantizationMode, QuantType
    from onnxruntime.quantization.onnx_quantizer import ONNXQuantizer
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    fp32 = Path(fp32)
    if arch not in QUANT_ARCHS:
        raise ConfigError(f"quantisation architecture {arch!r}: choose one of {', '.join(QUANT_ARCHS)}")
    out = fp32.with_name(quantized_file_name(arch))
    tmp = out.with_name(f".{out.name}.tmp")
    proto = onnx.load(str(fp32))
    has_subgraphs = any(node.op_type in ("If", "Loop", "Scan", "SequenceMap") for node in proto.graph.node)
    # the arguments optimum's ORTQuantizer.quantize passes for AutoQuantizationConfig.<arch>(is_static=False)
    quantizer = ONNXQuantizer(
        proto, per_channel=True, reduce_range=False, mode=QuantizationMode.IntegerOps, static=False,
        weight_qType=getattr(QuantType, QUANT_ARCHS[arch]), activation_qType=QuantType.QUInt8, tensors_range=None,
        nodes_to_quantize=[], nodes_to_exclude=[], op_types_to_quantize=list(IntegerOpsRegistry),
        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False, "EnableSubgraph": has_subgraphs,
                       "ForceSymmetric": False},
    )
    try:
        with _quiet():
            quantizer.quantize_model()
            quantizer.model.save_model_to_file(str(tmp), proto.ByteSize() > _EXTERNAL_DATA_BYTES)
        os.replace(tmp, out)
    except Exception as exc:
        raise ModelError(f"int8 quantisation of {fp32} failed: {_one_line(exc)}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def _copy_folder(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.name in _SKIP_ON_COPY or entry.name.startswith("."):
            continue
        target = dst / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, target)


@contextlib.contextmanager
def _quiet():
    """The exporter and quantiser print progress and warnings: keep them off the user's terminal."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "onnx_ir", "root", "")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
