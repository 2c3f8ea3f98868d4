"""Encode through ONNX Runtime: a stand-in for the Hugging Face model inside :class:`decone.encoder.Encoder`.

:class:`OnnxTransformer` is an ``nn.Module`` whose ``forward(input_ids, attention_mask, token_type_ids=None, ...)``
returns what ``Encoder.forward`` reads from ``enc.model``: ``last_hidden_state`` (B, L, H) and ``pooler_output``
(B, H, or None) as torch tensors. Tokenising, length-sorted batching, dynamic padding, pooling, dense layers and
normalisation stay decone's own, so an ONNX-backed encoder embeds exactly as the torch one does, up to the graph's
floating-point differences (fp32: cosine > 0.9999; int8: see docs/export.md)::

    from decone.encoder import Encoder
    enc = Encoder.load("runs/simcse", backend="onnx")                    # onnx/model.onnx, from `decone export`
    enc = Encoder.load("runs/simcse", backend="onnx", onnx_file="int8")  # onnx/model_q*int8_<this cpu>.onnx
    enc.encode(["a sentence"])

Threads: each session runs a batch on one core (``intra_op_num_threads=1``) and ``Encoder.encode`` runs
``torch.get_num_threads()`` batches side by side in its worker threads, as it does for torch (ONNX Runtime releases the
GIL and ``session.run`` is thread-safe). Pass ``threads`` to give each run more cores instead (then ``encode(workers=1)``).

The graph has the last layer only: ``first_last_avg`` pooling and ``encode(layers=...)`` need the torch backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from decone.errors import ModelError
from decone.onnx_layout import ONNX_DIR, ONNX_FILE, QUANT_ARCHS, cpu_arch, needs_all_layers, quantized_file_name, require_onnx


class OnnxTransformer(nn.Module):
    """An ONNX Runtime session that answers like ``transformers.AutoModel`` for decone's encoder.

    Args:
        path: the ``.onnx`` file (``decone export`` or sentence-transformers' layout).
        config: the model's ``transformers`` config (hidden size, position limit, model type).
        threads: ONNX Runtime intra-op threads per run (default 1; see the module docstring).
        providers: ONNX Runtime execution providers (default ``["CPUExecutionProvider"]``).
    """

    def __init__(self, path: str | os.PathLike, config, threads: int | None = None, providers: list[str] | None = None):
        super().__init__()
        require_onnx("the ONNX backend")
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such ONNX file; write it with `decone export MODEL --format onnx`")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or 1)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # shared CPUs: no busy waiting
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file
            text = str(exc).strip().splitlines()
            raise ModelError(f"{self.path}: ONNX Runtime cannot load it ({(text[0] if text else type(exc).__name__)[:200]})") from None
        self.config = config
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        if "input_ids" not in self.input_names or "last_hidden_state" not in self.output_names:
            raise ModelError(f"{self.path}: not a feature-extraction graph (needs input_ids -> last_hidden_state; "
                             f"has {self.input_names} -> {self.output_names})")
        self.has_pooler = "pooler_output" in self.output_names
        self.pooler = None  # the pooler, if any, is inside the graph (pooler_output)
        # an empty parameter so that ``next(model.parameters()).device`` and ``Encoder.to`` work as for torch models
        self._anchor = nn.Parameter(torch.empty(0), requires_grad=False)

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, output_hidden_states: bool = False,
                return_dict: bool = True, position_ids: torch.Tensor | None = None, **_unused):
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        if output_hidden_states:
            raise ModelError("the ONNX backend has the last layer only: first_last_avg pooling and per-layer "
                             "vectors (layers=...) need the torch backend")
        if position_ids is not None:
            raise ModelError("the ONNX graph numbers positions itself; explicit position_ids need the torch backend")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        feed = {"input_ids": input_ids, "attention_mask": attention_mask,
                "token_type_ids": token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)}
        feed = {k: _int64(feed[k]) for k in self.input_names}
        outputs = dict(zip(self.output_names, self.session.run(None, feed)))
        device = self._anchor.device
        last = torch.from_numpy(outputs["last_hidden_state"]).to(device)
        pooled = torch.from_numpy(outputs["pooler_output"]).to(device) if self.has_pooler else None
        return BaseModelOutputWithPooling(last_hidden_state=last, pooler_output=pooled)

    def save_pretrained(self, *args, **kwargs):
        raise ModelError("an ONNX-backed encoder cannot be saved; load the folder with the torch backend to save it")

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, inputs={self.input_names}, outputs={self.output_names}"


def _int64(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=np.int64)


def resolve_onnx_file(folder: str | os.PathLike, file_name: str | None = None) -> Path:
    """Which graph to load from a model folder.

    ``None`` or ``"fp32"``: ``onnx/model.onnx``. ``"int8"``: this CPU's quantised file
    (``onnx/model_qint8_avx512_vnni.onnx``, ``model_quint8_avx2.onnx``, ...), else any quantised one. Anything else: a
    file name under ``onnx/`` or a path relative to the folder.

    Raises:
        ModelError: the file is not there (the message says how to write it).
    """
    folder = Path(folder)
    onnx_dir = folder / ONNX_DIR
    if file_name in (None, "fp32"):
        path = onnx_dir / ONNX_FILE
        if not path.is_file():
            raise ModelError(f"{folder}: no {ONNX_DIR}/{ONNX_FILE}; write it with `decone export {folder} --format onnx`")
        return path
    if file_name in ("int8", "qint8", "quint8"):
        preferred = onnx_dir / quantized_file_name(cpu_arch())
        if preferred.is_file():
            return preferred
        others = [onnx_dir / quantized_file_name(a) for a in QUANT_ARCHS]
        others = [p for p in others if p.is_file()]
        if others:
            return others[0]
        raise ModelError(f"{folder}: no int8 ONNX file in {ONNX_DIR}/; write it with "
                         f"`decone export {folder} --format onnx --quantize int8`")
    for candidate in (onnx_dir / file_name, folder / file_name):
        if candidate.is_file():
            return candidate
    raise ModelError(f"{folder}: no ONNX file {file_name!r} (looked in {ONNX_DIR}/ and the folder)")


def load_onnx_transformer(folder: str | os.PathLike, config=None, file_name: str | None = None,
                          threads: int | None = None, providers: list[str] | None = None) -> OnnxTransformer:
    """An :class:`OnnxTransformer` for a model folder (``config`` read from the folder when not given)."""
    path = resolve_onnx_file(folder, file_name)
    if config is None:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(str(folder))
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{folder}: cannot load the model config ({str(exc).strip().splitlines()[0][:200]})") from None
    return OnnxTransformer(path, config, threads=threads, providers=providers)


def attach_onnx(enc, folder: str | os.PathLike, file_name: str | None = None, threads: int | None = None,
                providers: list[str] | None = None):
    """Replace ``enc.model`` (the torch transformer) by the folder's ONNX graph; returns ``enc``.

    This is what ``Encoder.load(path, backend="onnx")`` calls after loading the folder's settings.

    Raises:
        ModelError: the pooling needs more than the last layer, the graph is missing, or ``cls`` pooling meets a
            graph without ``pooler_output``.
    """
    if needs_all_layers(enc):
        raise ModelError(f"{folder}: pooling {enc.pooling!r} needs two hidden layers; the ONNX backend has the last only")
    model = load_onnx_transformer(folder, enc.model.config, file_name, threads, providers)
    if enc.pooling == "cls" and getattr(enc.model, "pooler", None) is not None and not model.has_pooler:
        raise ModelError(f"{model.path}: pooling 'cls' needs the pooler, and this graph has no pooler_output; "
                         f"re-export it with `decone export {folder} --format onnx`")
    device = enc.device
    enc.model = model.to(device)
    enc.backend = "onnx"
    return enc
