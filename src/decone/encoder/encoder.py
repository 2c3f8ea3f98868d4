"""The :class:`Encoder` facade: load, encode, save. The parts live beside it: pooling, folder, batching, device."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from decone import decoders
from decone.encoder import batching, folder
from decone.encoder.device import default_device, resolve_bf16
from decone.encoder.pooling import Dense, Pooling, pool
from decone.errors import ConfigError
from decone.onnx_backend import attach_onnx


class Encoder(nn.Module):
    """A transformer with ONE pooling (:class:`~decone.encoder.pooling.Pooling`), optional dense layers and optional
    L2 normalisation; ``model`` is the Hugging Face ``AutoModel``, ``tokenizer`` its tokenizer."""

    def __init__(self, model: nn.Module, tokenizer, pooling: str = "mean", max_length: int = 128,
                 dense: Iterable[Dense] = (), normalize: bool = False, template: str | None = None):
        super().__init__()
        self.model, self.tokenizer = model, tokenizer
        self.pooling_module = Pooling(pooling, template)
        self.max_length = int(max_length)
        self.dense = nn.ModuleList(dense)
        self.normalize = normalize
        self.is_decoder = decoders.is_decoder_config(model.config)  # once: forward asks on every batch
        self.check_max_length(self.max_length)

    @property
    def pooling(self) -> str:
        return self.pooling_module.mode

    @pooling.setter
    def pooling(self, mode: str) -> None:
        self.pooling_module = Pooling(mode, self.pooling_module.template if mode == "mask" else None)

    @property
    def dim(self) -> int:
        return self.dense[-1].linear.out_features if len(self.dense) else int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def check_max_length(self, max_length: int) -> None:
        folder.check_max_length(self.model.config, max_length)

    @property
    def layer_pooling(self) -> str:
        """How a hidden layer is pooled for per-layer vectors: [CLS] for the cls poolings, else the padding-aware mean."""
        return "cls_before_pooler" if self.pooling.startswith("cls") else "mean"

    # ------------------------------------------------------------------ tokenising and the forward pass
    def tokenize_ids(self, texts: Sequence[str], max_length: int | None = None) -> batching.Tokenized:
        """Token ids with special tokens (inside the pooling's template, if any), truncated, unpadded."""
        if self.pooling_module.template is not None:
            return batching.Tokenized(self.pooling_module.wrap_ids(self.tokenizer, texts, max_length or self.max_length))
        enc = self.tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=max_length or self.max_length,
                             return_attention_mask=False, return_token_type_ids=False)
        return batching.Tokenized(enc["input_ids"])

    def collate(self, ids: Sequence[Sequence[int]]) -> dict[str, Tensor]:
        """Pad a batch of id lists to its own longest member. -> input_ids, attention_mask (B, L)."""
        return batching.collate(ids, self.tokenizer.pad_token_id)

    def tokenize(self, texts: Sequence[str], max_length: int | None = None) -> dict[str, Tensor]:
        """Tokenise and pad to the batch maximum. -> input_ids, attention_mask (B, L)."""
        return self.collate(self.tokenize_ids(texts, max_length).input_ids)

    def forward(self, features: dict[str, Tensor], output_hidden_states: bool = False) -> dict[str, Tensor]:
        """features ``input_ids``, ``attention_mask`` (B, L) -> ``embedding`` (B, dim) after pooling, dense layers and
        normalisation; ``token_embeddings`` (B, L, H); ``attention_mask``; ``hidden_states`` (embeddings first) if asked."""
        need_all = output_hidden_states or self.pooling_module.needs_all_layers
        inputs = {k: v for k, v in features.items() if k in ("input_ids", "attention_mask", "token_type_ids", "position_ids")}
        if self.is_decoder:
            inputs["use_cache"] = False  # no key/value cache: one pass, no generation
        out = self.model(**inputs, output_hidden_states=need_all, return_dict=True)
        hidden = out.hidden_states if need_all else (out.last_hidden_state,)
        pooler_output = getattr(out, "pooler_output", None) if self.pooling == "cls" else None
        emb = self.pooling_module(hidden, features["attention_mask"], pooler_output, features["input_ids"],
                                  self.tokenizer.mask_token_id)
        for layer in self.dense:
            emb = layer(emb)
        if self.normalize:
            emb = nn.functional.normalize(emb, dim=-1)
        result = {"embedding": emb, "token_embeddings": out.last_hidden_state, "attention_mask": features["attention_mask"]}
        if output_hidden_states:
            result["hidden_states"] = out.hidden_states
        return result

    # ------------------------------------------------------------------ inference
    def for_each_batch(self, sentences: Sequence[str], batch_size: int, fn, show_progress: bool | None = None,
                       workers: int | None = None, description: str = "encoding") -> None:
        """``fn(idx, feats)`` for every length-sorted batch, in eval mode; see :func:`batching.for_each_batch`."""
        batching.for_each_batch(self, sentences, batch_size, fn, show_progress, workers, description)

    @torch.inference_mode()
    def encode(self, sentences: Sequence[str] | str, batch_size: int = 64, normalize: bool = False,
               show_progress: bool | None = None, bf16: bool | None = False, layers: Sequence[int] | None = None,
               workers: int | None = None) -> np.ndarray:
        """Embed texts -> float32 (n, dim), in input order; texts are tokenised once and batched by length.

        ``bf16``: autocast (None: where the hardware has it natively); ``layers``: pool these hidden layers
        (0 = embeddings) instead, -> (len(layers), n, H); ``workers``: CPU threads of one core each (None: torch's
        thread count; each batch is computed whole by one thread, so results match the serial loop)."""
        sentences = [sentences] if isinstance(sentences, str) else list(sentences)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        device, n = self.device, len(sentences)
        use_bf16 = resolve_bf16(bf16, device)
        dim = self.dim if layers is None else int(self.model.config.hidden_size)
        out = np.zeros((n, dim) if layers is None else (len(layers), n, dim), dtype=np.float32)

        def embed(idx: np.ndarray, feats: dict[str, Tensor]) -> None:
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                if layers is None:
                    emb = self(feats)["embedding"]  # (B, dim)
                else:
                    hs = self(feats, output_hidden_states=True)["hidden_states"]
                    emb = torch.stack([pool((hs[k],), feats["attention_mask"], self.layer_pooling) for k in layers])
            emb = nn.functional.normalize(emb.float(), dim=-1) if normalize else emb.float()
            out[(slice(None), idx) if layers is not None else idx] = emb.cpu().numpy()

        if n:
            self.for_each_batch(sentences, batch_size, embed, show_progress, workers)
        return out

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def load(cls, name_or_path: str | os.PathLike, pooling: str | None = None, max_length: int | None = None,
             device: str | torch.device | None = None, allow_pickle: bool = False, trust_remote_code: bool = False,
             backend: str = "torch", onnx_file: str | None = None, onnx_threads: int | None = None,
             onnx_providers: list[str] | None = None) -> "Encoder":
        """From a decone, sentence-transformers or Hugging Face folder, or a hub name; the folder's own pooling, dense
        layers and normalisation unless ``pooling``/``max_length`` override them. Safetensors only unless
        ``allow_pickle`` (then ``weights_only=True``); ``backend="onnx"`` runs the folder's ``onnx/`` export
        (``onnx_file``: None fp32, "int8", or a file name; ``onnx_threads``: cores per ONNX Runtime run, None one
        each with runs side by side; ``onnx_providers``: ONNX Runtime's execution providers, None the CPU's).
        Raises ModelError (one line) for what :mod:`folder` checks."""
        if backend not in ("torch", "onnx"):
            raise ConfigError(f"backend {backend!r}: choose torch or onnx")
        source = str(name_or_path)
        model, tokenizer, settings, base = folder.load_parts(source, allow_pickle, trust_remote_code)
        dense = folder.load_dense(Path(base), settings["dense"], int(model.config.hidden_size), source)
        mode = pooling or settings["pooling"]
        enc = cls(model, tokenizer, pooling=mode, dense=dense, normalize=settings["normalize"],
                  max_length=max_length if max_length is not None else
                  settings["max_length"] or folder.default_max_length(tokenizer, model.config),
                  template=settings.get("template") if mode == "mask" else None)
        enc.source, enc.meta, enc.load_warnings = source, settings.get("meta", {}), settings.get("warnings", [])
        enc.pooling_from_folder = bool(settings.get("pooling_set")) and pooling is None
        if backend == "onnx":  # ONNX Runtime on the CPU: the default device is the CPU too
            attach_onnx(enc, base, onnx_file, onnx_threads, onnx_providers)
            device = "cpu" if device is None else device
        return enc.to(torch.device(device) if device is not None else default_device())

    def save(self, path: str | os.PathLike, meta: dict | None = None, lora_save: str = "merged") -> list[str]:
        """Write a self-describing folder atomically (a temporary folder, then renames); returns warnings.
        ``lora_save``: a LoRA model's adapters ``merged`` into the weights, or the ``adapter`` alone (decone.lora)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".decone-save-", dir=path.parent))
        try:
            warnings = folder.write_folder(self, tmp, meta or {}, lora_save)
            folder.replace_folder_contents(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return warnings
