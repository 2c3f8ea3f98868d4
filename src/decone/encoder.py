"""The encoder: a Hugging Face transformer, ONE padding-aware pooling, optional dense layers, optional normalisation.

Training, encoding, evaluation, diagnostics and the CLI all go through :func:`pool` and :meth:`Encoder.forward`, so a
sentence is embedded the same way everywhere.

Poolings (names follow SimCSE's evaluation tool, Gao et al. 2021):

* ``cls``               the model's pooler output (BERT: dense + tanh over the last-layer [CLS]); the last-layer [CLS]
                        hidden state where the model has no pooler.
* ``cls_before_pooler`` the last-layer [CLS] hidden state.
* ``mean``              the mean of the last layer over real (non-padding) tokens.
* ``first_last_avg``    the mean over real tokens of the average of the first transformer layer and the last layer
                        (``hidden_states[1]`` and ``hidden_states[-1]``; Su et al. 2021, Gao et al. 2021).

A saved encoder is a self-describing folder that loads with ``decone``, ``transformers.AutoModel`` and (for every
pooling but ``first_last_avg``) ``sentence_transformers.SentenceTransformer``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from decone.errors import ConfigError, ModelError

POOLINGS = ("cls", "cls_before_pooler", "mean", "first_last_avg")
ACTIVATIONS = {"tanh": nn.Tanh, "identity": nn.Identity}
_ST_ACTIVATION = {
    "tanh": "torch.nn.modules.activation.Tanh",
    "identity": "torch.nn.modules.linear.Identity",
}


def pool(
    hidden_states: Sequence[Tensor],
    attention_mask: Tensor,
    pooling: str,
    pooler_output: Tensor | None = None,
) -> Tensor:
    """Pool token states into one vector per sequence, ignoring padding.

    Args:
        hidden_states: the model's hidden states, embeddings first: a sequence of (B, L, H) tensors. Only the last
            is needed except for ``first_last_avg``, which needs ``hidden_states[1]`` too.
        attention_mask: (B, L), 1 for real tokens and 0 for padding.
        pooling: one of :data:`POOLINGS`.
        pooler_output: (B, H), the model's pooler output, used by ``cls`` where the model has a pooler.

    Returns:
        (B, H) pooled embeddings.
    """
    last = hidden_states[-1]
    if pooling == "cls":
        return pooler_output if pooler_output is not None else last[:, 0]
    if pooling == "cls_before_pooler":
        return last[:, 0]
    if pooling == "mean":
        return masked_mean(last, attention_mask)
    if pooling == "first_last_avg":
        if len(hidden_states) < 2:
            raise ValueError("first_last_avg pooling needs all hidden states (output_hidden_states=True)")
        return masked_mean((hidden_states[1] + last) / 2.0, attention_mask)
    raise ConfigError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")


def masked_mean(tokens: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean over the real tokens. tokens (B, L, H), attention_mask (B, L) -> (B, H)."""
    mask = attention_mask.unsqueeze(-1).to(tokens.dtype)  # (B, L, 1)
    return (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class Dense(nn.Module):
    """A linear layer and an activation after pooling; saved as a sentence-transformers ``Dense`` module.

    Used for a kept SimCSE MLP head (``activation="tanh"``) and for whitening (``activation="identity"``).
    (B, in_features) -> (B, out_features).
    """

    def __init__(self, in_features: int, out_features: int, activation: str = "tanh", bias: bool = True):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        self.activation_name = activation
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.linear(x))

    def st_config(self) -> dict:
        return {
            "in_features": self.linear.in_features,
            "out_features": self.linear.out_features,
            "bias": self.linear.bias is not None,
            "activation_function": _ST_ACTIVATION[self.activation_name],
        }


class MLPHead(Dense):
    """SimCSE's MLP head (Gao et al. 2021, section 3): Linear(d, d) + tanh over the pooled vector. (B, d) -> (B, d)."""

    def __init__(self, dim: int):
        super().__init__(dim, dim, activation="tanh")


def has_bf16_cpu() -> bool:
    """True where the CPU has native bf16 (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        return False


def resolve_bf16(bf16: bool | None, device: torch.device) -> bool:
    """``None`` means: bf16 on a GPU that supports it, or on a CPU with native bf16."""
    if bf16 is not None:
        return bf16
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and has_bf16_cpu()


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Tokenized:
    """Token ids of a list of texts, unpadded, with each text's length, ready to batch by length."""

    input_ids: list[list[int]]

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))


class Encoder(nn.Module):
    """A transformer encoder with one pooling, optional dense layers and optional L2 normalisation.

    Args:
        model: a Hugging Face encoder (``transformers.AutoModel``).
        tokenizer: its tokenizer.
        pooling: one of :data:`POOLINGS`.
        max_length: truncation length in tokens.
        dense: layers applied after pooling and saved with the model (a kept MLP head, whitening).
        normalize: L2-normalise the output (saved as sentence-transformers' ``Normalize``).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        pooling: str = "mean",
        max_length: int = 128,
        dense: Iterable[Dense] = (),
        normalize: bool = False,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_length = int(max_length)
        self.dense = nn.ModuleList(dense)
        self.normalize = normalize
        self.check_max_length(self.max_length)

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        if len(self.dense):
            return self.dense[-1].linear.out_features
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def position_limit(self) -> int | None:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None and getattr(self.model.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
            limit -= 2  # RoBERTa reserves two positions for the padding offset
        return limit

    def check_max_length(self, max_length: int) -> None:
        limit = self.position_limit
        if max_length < 2:
            raise ConfigError(f"max_length must be at least 2 tokens, got {max_length}")
        if limit is not None and max_length > limit:
            raise ConfigError(
                f"max_length {max_length} exceeds the model's position limit {limit} (max_position_embeddings)"
            )

    # ------------------------------------------------------------------ tokenising and the forward pass
    def tokenize_ids(self, texts: Sequence[str], max_length: int | None = None) -> Tokenized:
        """Token ids with special tokens, truncated to ``max_length``, unpadded."""
        enc = self.tokenizer(
            list(texts),
            add_special_tokens=True,
            truncation=True,
            max_length=max_length or self.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return Tokenized(enc["input_ids"])

    def collate(self, ids: Sequence[Sequence[int]]) -> dict[str, Tensor]:
        """Pad a batch of id lists to its own longest member: dynamic padding. -> input_ids, attention_mask (B, L)."""
        width = max(len(x) for x in ids)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
            attention_mask[i, : len(row)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def tokenize(self, texts: Sequence[str], max_length: int | None = None) -> dict[str, Tensor]:
        """Tokenise and pad to the batch maximum. -> input_ids, attention_mask (B, L)."""
        return self.collate(self.tokenize_ids(texts, max_length).input_ids)

    def forward(self, features: dict[str, Tensor], output_hidden_states: bool = False) -> dict[str, Tensor]:
        """Embed a tokenised batch.

        Args:
            features: ``input_ids`` and ``attention_mask``, each (B, L).
            output_hidden_states: also return every layer's states (embeddings first), each (B, L, H).

        Returns:
            ``embedding`` (B, dim) after pooling, dense layers and normalisation; ``token_embeddings`` (B, L, H);
            ``attention_mask`` (B, L); and ``hidden_states`` if asked for.
        """
        need_all = output_hidden_states or self.pooling == "first_last_avg"
        model_inputs = {k: v for k, v in features.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        out = self.model(**model_inputs, output_hidden_states=need_all, return_dict=True)
        hidden = out.hidden_states if need_all else (out.last_hidden_state,)
        pooler_output = getattr(out, "pooler_output", None) if self.pooling == "cls" else None
        emb = pool(hidden, features["attention_mask"], self.pooling, pooler_output)
        for layer in self.dense:
            emb = layer(emb)
        if self.normalize:
            emb = nn.functional.normalize(emb, dim=-1)
        result = {"embedding": emb, "token_embeddings": out.last_hidden_state, "attention_mask": features["attention_mask"]}
        if output_hidden_states:
            result["hidden_states"] = out.hidden_states
        return result

    # ------------------------------------------------------------------ inference
    def length_batches(self, texts: Sequence[str], batch_size: int) -> tuple[list[list[int]], list[np.ndarray]]:
        """Tokenise once and group indices into batches of similar length (longest first)."""
        tok = self.tokenize_ids(texts)
        order = np.argsort(-tok.lengths(), kind="stable")
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        return tok.input_ids, batches

    @property
    def layer_pooling(self) -> str:
        """How a hidden layer is pooled for per-layer vectors: [CLS] for the cls poolings, else the padding-aware mean."""
        return "cls_before_pooler" if self.pooling.startswith("cls") else "mean"

    def for_each_batch(self, sentences: Sequence[str], batch_size: int, fn, show_progress: bool | None = None,
                       workers: int | None = None, description: str = "encoding") -> None:
        """Tokenise once, batch by length, and call ``fn(idx, feats)`` for every batch, in eval mode.

        ``idx`` (B,) are the batch's positions in ``sentences``; ``feats`` holds ``input_ids`` and ``attention_mask``
        (B, L) on the encoder's device, padded to the batch's longest text. On CPU the batches run in one-core worker
        threads (:func:`run_batches`), so ``fn`` must only write to rows ``idx`` of shared outputs.
        """
        device = self.device
        was_training = self.training
        self.eval()
        ids, batches = self.length_batches(sentences, batch_size)
        if show_progress is None:
            show_progress = len(batches) > 20 and sys.stderr.isatty()
        progress = _progress(show_progress, description, len(batches))

        def one(idx: np.ndarray) -> None:
            fn(idx, {k: v.to(device) for k, v in self.collate([ids[i] for i in idx]).items()})
            progress.advance()

        try:
            run_batches(one, batches, cpu_workers(device, len(batches), workers))
        finally:
            progress.close()
            self.train(was_training)

    @torch.inference_mode()
    def encode(
        self,
        sentences: Sequence[str] | str,
        batch_size: int = 64,
        normalize: bool = False,
        show_progress: bool | None = None,
        bf16: bool | None = False,
        layers: Sequence[int] | None = None,
        workers: int | None = None,
    ) -> np.ndarray:
        """Embed sentences.

        Texts are tokenised once, sorted by length and batched with dynamic padding, so short texts never pay for
        long ones. The output keeps the input order.

        Args:
            sentences: the texts (a single string gives a (1, d) array).
            batch_size: texts per forward pass.
            normalize: L2-normalise each row.
            show_progress: a progress bar; ``None`` shows it for more than 20 batches on a terminal.
            bf16: bf16 autocast; ``None`` uses it where the hardware supports it. Default fp32.
            layers: instead of the final embedding, pool these hidden layers (0 = embeddings) with the encoder's
                pooling (no dense layers); the result is then (len(layers), n, H).
            workers: on CPU, batches run in this many threads of one core each; ``None`` uses torch's thread count.
                Small encoders keep one core busier than two cores share one GEMM (measured 1.2-1.3x faster with 2
                cores; each batch is computed whole by one thread, so results match the serial loop: bit-identical in
                our tests). ``1`` runs serially.

        Returns:
            float32 array (n, dim), or (len(layers), n, H) when ``layers`` is given.
        """
        if isinstance(sentences, str):
            sentences = [sentences]
        sentences = list(sentences)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        device = self.device
        use_bf16 = resolve_bf16(bf16, device)
        n = len(sentences)
        dim = self.dim if layers is None else int(self.model.config.hidden_size)
        out = np.zeros((n, dim) if layers is None else (len(layers), n, dim), dtype=np.float32)
        if n == 0:
            return out

        def embed(idx: np.ndarray, feats: dict[str, Tensor]) -> None:
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                if layers is None:
                    emb = self(feats)["embedding"]
                else:
                    hs = self(feats, output_hidden_states=True)["hidden_states"]
                    emb = torch.stack([pool((hs[k],), feats["attention_mask"], self.layer_pooling) for k in layers])
            emb = emb.float()  # (B, dim), or (len(layers), B, H)
            if normalize:
                emb = nn.functional.normalize(emb, dim=-1)
            if layers is None:
                out[idx] = emb.cpu().numpy()
            else:
                out[:, idx] = emb.cpu().numpy()

        self.for_each_batch(sentences, batch_size, embed, show_progress, workers)
        return out

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        name_or_path: str | os.PathLike,
        pooling: str | None = None,
        max_length: int | None = None,
        device: str | torch.device | None = None,
        allow_pickle: bool = False,
        trust_remote_code: bool = False,
    ) -> "Encoder":
        """Load an encoder from a decone folder, a sentence-transformers folder, a Hugging Face folder or hub name.

        The folder's own settings (``decone.json``, else ``modules.json``) give the pooling, dense layers and
        normalisation; ``pooling`` and ``max_length`` override them. Weights load from safetensors; a folder with
        only a pickle ``pytorch_model.bin`` is refused unless ``allow_pickle`` (then loaded with
        ``weights_only=True``). Remote code runs only with ``trust_remote_code``.

        Raises:
            ModelError: the path does not exist, has no weights, holds only pickle weights, or is not an encoder.
        """
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        _quiet_transformers()
        source = str(name_or_path)
        local = Path(source)
        settings: dict = {"pooling": "mean", "dense": [], "normalize": False, "max_length": None, "pooling_set": False}
        model_dir = source
        if local.exists():
            if not local.is_dir():
                raise ModelError(f"{source}: a model must be a folder, not a file")
            model_dir, settings = _read_folder_settings(local)
            _check_weights(Path(model_dir), allow_pickle)
        elif _looks_local(source):
            raise ModelError(f"{source}: model path does not exist")
        try:
            config = AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
        except Exception as exc:  # hub unreachable, bad config.json, ...
            raise ModelError(f"{source}: cannot load the model config ({_one_line(exc)})") from None
        _check_encoder(config, source)
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
            model = AutoModel.from_pretrained(
                model_dir,
                config=config,
                trust_remote_code=trust_remote_code,
                use_safetensors=None if allow_pickle else True,
            )
        except Exception as exc:
            raise ModelError(f"{source}: cannot load the model weights or tokenizer ({_one_line(exc)})") from None
        if tokenizer.pad_token_id is None:
            raise ModelError(f"{source}: the tokenizer has no padding token")
        hidden = int(config.hidden_size)
        dense = []
        for spec in settings["dense"]:
            layer = Dense(spec["in_features"], spec["out_features"], spec["activation"], spec.get("bias", True))
            from safetensors.torch import load_file

            state = load_file(os.path.join(source if local.exists() else model_dir, spec["path"], "model.safetensors"))
            layer.load_state_dict(state)
            dense.append(layer)
        if max_length is None:
            max_length = settings["max_length"] or _default_max_length(tokenizer, config)
        enc = cls(
            model,
            tokenizer,
            pooling=pooling or settings["pooling"],
            max_length=max_length,
            dense=dense,
            normalize=settings["normalize"],
        )
        enc.source = source
        enc.meta = settings.get("meta", {})
        enc.pooling_from_folder = bool(settings.get("pooling_set")) and pooling is None
        if dense and dense[0].linear.in_features != hidden:
            raise ModelError(f"{source}: dense layer expects {dense[0].linear.in_features} features, model has {hidden}")
        enc.to(torch.device(device) if device is not None else default_device())
        return enc

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike, meta: dict | None = None) -> list[str]:
        """Save as a self-describing folder, atomically (a temporary folder, then renames).

        Writes the transformer (``config.json``, ``model.safetensors``, tokenizer files), the sentence-transformers
        modules (``modules.json``, ``1_Pooling``, ``*_Dense``, ``*_Normalize``) and ``decone.json`` (pooling, dense
        layers, ``meta``: method, config and training summary).

        Returns:
            warnings, e.g. that ``first_last_avg`` cannot be expressed in sentence-transformers.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".decone-save-", dir=path.parent))
        try:
            warnings = self._write(tmp, meta or {})
            _replace_folder_contents(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return warnings

    def _write(self, folder: Path, meta: dict) -> list[str]:
        from safetensors.torch import save_file

        warnings: list[str] = []
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        hidden = int(self.model.config.hidden_size)
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
        st_pooling = {"cls": "cls", "cls_before_pooler": "cls", "mean": "mean"}.get(self.pooling)
        st_ok = st_pooling is not None
        dense_specs = []
        st_dense: list[Dense] = []
        if self.pooling == "cls" and getattr(self.model, "pooler", None) is not None:
            pooler = _pooler_as_dense(self.model.pooler, hidden)
            if pooler is None:
                st_ok = False
            else:
                st_dense.append(pooler)
        if st_ok:
            _write_json(
                folder / "1_Pooling" / "config.json",
                {
                    "word_embedding_dimension": hidden,
                    "pooling_mode_cls_token": st_pooling == "cls",
                    "pooling_mode_mean_tokens": st_pooling == "mean",
                    "pooling_mode_max_tokens": False,
                    "pooling_mode_mean_sqrt_len_tokens": False,
                },
            )
            modules.append({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"})
        else:
            warnings.append(
                f"pooling {self.pooling!r} cannot be expressed in sentence-transformers: no modules.json is written, "
                "so SentenceTransformer(path) would NOT reproduce these embeddings; load it with decone.Encoder.load "
                "(or transformers.AutoModel for the raw transformer)"
            )
        for layer in [*st_dense, *self.dense]:
            idx = len(modules)
            sub = f"{idx}_Dense"
            (folder / sub).mkdir()
            _write_json(folder / sub / "config.json", layer.st_config())
            save_file({k: v.detach().cpu().contiguous() for k, v in layer.state_dict().items()}, folder / sub / "model.safetensors")
            modules.append({"idx": idx, "name": str(idx), "path": sub, "type": "sentence_transformers.models.Dense"})
            if layer in list(self.dense):
                dense_specs.append({"path": sub, "in_features": layer.linear.in_features, "out_features": layer.linear.out_features,
                                    "activation": layer.activation_name, "bias": layer.linear.bias is not None})
        if self.normalize:
            idx = len(modules)
            (folder / f"{idx}_Normalize").mkdir()
            modules.append({"idx": idx, "name": str(idx), "path": f"{idx}_Normalize", "type": "sentence_transformers.models.Normalize"})
        if st_ok:
            _write_json(folder / "modules.json", modules)
            _write_json(folder / "sentence_bert_config.json", {"max_seq_length": self.max_length, "do_lower_case": False})
            _write_json(
                folder / "config_sentence_transformers.json",
                {"__version__": {"decone": _version()}, "prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"},
            )
        _write_json(
            folder / "decone.json",
            {
                "decone_version": _version(),
                "pooling": self.pooling,
                "max_length": self.max_length,
                "normalize": self.normalize,
                "dense": dense_specs,
                "sentence_transformers_compatible": st_ok,
                **meta,
            },
        )
        return warnings


# ---------------------------------------------------------------------- helpers
def cpu_workers(device: torch.device, n_batches: int, workers: int | None = None) -> int:
    """How many one-core worker threads :func:`run_batches` should use: 1 off CPU or for fewer than two batches."""
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if device.type != "cpu" or n_batches < 2:
        return 1
    return min(torch.get_num_threads() if workers is None else workers, n_batches)


def run_batches(fn, batches: Sequence, workers: int = 1) -> None:
    """Call ``fn(batch)`` for every batch: in this thread, or spread over ``workers`` threads of one core each.

    Worker threads take the next batch from a shared iterator (long batches first keeps the tail short). Each sets its
    own intra-op thread count to 1 (an OpenMP per-thread setting), so ``workers`` GEMMs run side by side instead of
    one GEMM split over the cores; torch releases the GIL inside its kernels. The first error stops the others.
    """
    if workers <= 1:
        for batch in batches:
            fn(batch)
        return
    import threading
    from concurrent.futures import ThreadPoolExecutor

    pending = iter(batches)
    lock = threading.Lock()
    failed = threading.Event()
    grad_enabled, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    def worker() -> None:
        torch.set_num_threads(1)
        # grad modes are thread-local: carry the caller's into the worker
        with torch.inference_mode(inference), torch.set_grad_enabled(grad_enabled):
            while not failed.is_set():
                with lock:
                    batch = next(pending, None)
                if batch is None:
                    return
                try:
                    fn(batch)
                except BaseException:
                    failed.set()
                    raise

    # torch.set_num_threads also records a process-wide default that threads started later inherit: restore it
    threads = torch.get_num_threads()
    executor = ThreadPoolExecutor(workers, thread_name_prefix="decone-encode")
    try:
        for future in [executor.submit(worker) for _ in range(workers)]:
            future.result()
    except BaseException:  # a worker's error, or Ctrl-C in this thread: the others stop after their current batch
        failed.set()
        raise
    finally:
        executor.shutdown(wait=True)
        torch.set_num_threads(threads)


class _progress:
    """A rich progress bar that costs nothing when disabled."""

    def __init__(self, enabled: bool, description: str, total: int):
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self.bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _pooler_as_dense(pooler: nn.Module, hidden: int) -> Dense | None:
    """BERT's pooler (dense + tanh over [CLS]) as a Dense module, so sentence-transformers reproduces ``cls``."""
    linear = getattr(pooler, "dense", None)
    act = getattr(pooler, "activation", None)
    if not isinstance(linear, nn.Linear) or not isinstance(act, nn.Tanh):
        return None
    layer = Dense(hidden, linear.out_features, "tanh")
    layer.linear.load_state_dict(linear.state_dict())
    return layer


def _read_folder_settings(folder: Path) -> tuple[str, dict]:
    """Pooling, dense layers, normalisation and max length from ``decone.json`` or a sentence-transformers folder."""
    settings: dict = {"pooling": "mean", "dense": [], "normalize": False, "max_length": None, "meta": {}, "pooling_set": False}
    model_dir = str(folder)
    decone_json = folder / "decone.json"
    if decone_json.exists():
        try:
            info = json.loads(decone_json.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{decone_json}: not valid JSON ({exc})") from None
        settings.update(pooling=info.get("pooling", "mean"), dense=info.get("dense", []),
                        normalize=bool(info.get("normalize", False)), max_length=info.get("max_length"), meta=info,
                        pooling_set="pooling" in info)
        return model_dir, settings
    modules_json = folder / "modules.json"
    if modules_json.exists():
        modules = json.loads(modules_json.read_text())
        for module in modules:
            kind = module["type"].rsplit(".", 1)[-1]
            sub = folder / module.get("path", "")
            if kind == "Transformer":
                model_dir = str(sub) if module.get("path") else model_dir
            elif kind == "Pooling":
                cfg = json.loads((sub / "config.json").read_text())
                mode = cfg.get("pooling_mode")
                if mode is None:
                    mode = "cls" if cfg.get("pooling_mode_cls_token") else "mean" if cfg.get("pooling_mode_mean_tokens") else None
                if mode not in ("cls", "mean"):
                    raise ModelError(f"{sub / 'config.json'}: sentence-transformers pooling {mode!r} is not supported (cls or mean)")
                settings["pooling"] = "cls_before_pooler" if mode == "cls" else "mean"
                settings["pooling_set"] = True
            elif kind == "Dense":
                cfg = json.loads((sub / "config.json").read_text())
                act = {v: k for k, v in _ST_ACTIVATION.items()}.get(cfg.get("activation_function", _ST_ACTIVATION["tanh"]))
                if act is None:
                    raise ModelError(f"{sub / 'config.json'}: unsupported activation {cfg.get('activation_function')!r}")
                settings["dense"].append({"path": module["path"], "in_features": cfg["in_features"],
                                          "out_features": cfg["out_features"], "activation": act, "bias": cfg.get("bias", True)})
            elif kind == "Normalize":
                settings["normalize"] = True
            else:
                raise ModelError(f"{modules_json}: module type {module['type']!r} is not supported by decone")
        sbert = Path(model_dir) / "sentence_bert_config.json"
        if not sbert.exists():
            sbert = folder / "sentence_bert_config.json"
        if sbert.exists():
            settings["max_length"] = json.loads(sbert.read_text()).get("max_seq_length")
    return model_dir, settings


def _check_weights(folder: Path, allow_pickle: bool) -> None:
    names = {p.name for p in folder.iterdir()}
    if "config.json" not in names:
        raise ModelError(f"{folder}: no config.json: not a Hugging Face model folder")
    if any(n == "model.safetensors" or (n.startswith("model-") and n.endswith(".safetensors")) for n in names):
        return
    if "model.safetensors.index.json" in names:
        return
    pickles = sorted(n for n in names if n.endswith(".bin") or n.endswith(".pt") or n.endswith(".pth"))
    if pickles:
        if allow_pickle:
            return
        raise ModelError(
            f"{folder}: only pickle weights ({', '.join(pickles)}), which can execute code when loaded; "
            "convert them to safetensors, or pass --allow-pickle to load them with torch.load(weights_only=True)"
        )
    raise ModelError(f"{folder}: no model weights (model.safetensors) in the folder")


def _check_encoder(config, source: str) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    model_type = getattr(config, "model_type", "?")
    if getattr(config, "is_encoder_decoder", False) or getattr(config, "is_decoder", False) or model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise ModelError(f"{source}: architecture {model_type!r} is not a bidirectional encoder (BERT, RoBERTa, MiniLM, ...)")


def _default_max_length(tokenizer, config) -> int:
    limits = [512]
    tmax = getattr(tokenizer, "model_max_length", None)
    if tmax and tmax < 100_000:
        limits.append(int(tmax))
    pmax = getattr(config, "max_position_embeddings", None)
    if pmax:
        limits.append(int(pmax) - (2 if config.model_type in ("roberta", "xlm-roberta", "camembert") else 0))
    return min(limits)


def _looks_local(source: str) -> bool:
    """A path that cannot be a hub id (``org/name`` or ``name``) is a missing local path."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or os.sep in source.replace("/", "") or source.endswith("/")


def _quiet_transformers() -> None:
    """Loading a masked-LM checkpoint as an encoder drops the MLM head by design; don't print a report about it."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def _replace_folder_contents(src: Path, dst: Path) -> None:
    """Move every entry of ``src`` into ``dst`` with renames (each atomic), replacing what is there."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dst / entry.name
        if target.is_dir() and not target.is_symlink():
            old = dst / f".{entry.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(entry, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(entry, target)


def _version() -> str:
    from decone import __version__

    return __version__
