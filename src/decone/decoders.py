"""Decoder-only language models (GPT-2, Llama, Mistral, Qwen2/Qwen3, Gemma) as sentence encoders: the pieces.

Pure functions and switches the :class:`decone.encoder.Encoder`, the trainer and the diagnostics call; none of them
edits a model file or needs a download.

* :func:`is_decoder_config`: a causal LM (transformers' causal-LM mapping) that is not also a masked LM or a
  sequence-to-sequence model.
* :func:`ensure_pad_token`: GPT-2 and Llama tokenizers have no padding token; give them eos (right padding, masked
  out, so its value never matters).
* Poolings on (token states (B, T, d), attention mask (B, T)): :func:`last_token` (the state of the last real
  token, for left or right padding) and :func:`weighted_mean` (SGPT's position-weighted mean, Muennighoff 2022,
  arXiv:2202.08904). The plain ``mean`` is :func:`decone.encoder.masked_mean`.
* :func:`bidirectional` / :func:`enable_bidirectional` / :func:`disable_bidirectional`: every token attends to every
  real token, as LLM2Vec's first step (BehnamGhader et al. 2024, arXiv:2404.05961), through transformers' own
  mask machinery: ``config.is_causal = False`` makes ``create_causal_mask`` (and the sliding-window variant) return
  the bidirectional padding mask, and ``module.is_causal = False`` on each attention module stops SDPA and
  flash-attention from re-imposing causality when that mask is ``None`` (no padding). transformers >= 5 only.
* :func:`drop_first_token`: decoders park attention on the first position (an "attention sink", Xiao et al. 2023,
  arXiv:2309.17453), whose state is an outlier; token-level diagnostics are reported with and without it.
* :func:`load_lm_head`: the output embedding of the checkpoint's causal LM, for objectives that predict tokens
  (MNTP) on the base model the encoder loads.
* :func:`layer_token_states` / :func:`token_anisotropy`: per-layer token states and Ethayarajh's (2019) average
  cosine of random token pairs from different sentences, per layer, with and without the first token.

``python -m decone.decoders MODEL [STS-B test csv] [--sentences N] [--pairs N]`` prints that table.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

#: The decoder poolings this module adds to the Encoder's (``mean`` is :func:`decone.encoder.masked_mean`).
DECODER_POOLINGS = ("last_token", "weighted_mean")
#: Families whose bidirectional switch is tested here (tiny random models of each in tests/decoders).
TESTED_FAMILIES = ("gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma")
_STATE = "_decone_causal_state"  # where enable_bidirectional keeps what it changed, for disable_bidirectional


# ---------------------------------------------------------------------------------------------- what the model is
def is_decoder_config(config) -> bool:
    """True for a decoder-only causal LM (GPT-2, Llama, Mistral, Qwen2/3, Gemma, ...).

    transformers' causal-LM mapping also lists encoders that have an LM head for generation (BERT, RoBERTa, ...) and
    encoder-decoders (BART): those are in the masked-LM mapping too, or are encoder-decoders, and are not decoders.
    """
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    model_type = getattr(config, "model_type", None)
    if model_type is None or getattr(config, "is_encoder_decoder", False):
        return False
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def ensure_pad_token(tokenizer, model_config=None) -> str | None:
    """Give a tokenizer without a padding token its eos token as padding (GPT-2, Llama, Mistral do not have one).

    Padding positions are masked out of attention and pooling, so the id only has to exist. Also sets
    ``model_config.pad_token_id`` where it is unset. Returns the one-line note to print, or None if nothing changed.
    Raises ValueError where there is neither a padding nor an eos token.
    """
    if tokenizer.pad_token is not None:
        if model_config is not None and getattr(model_config, "pad_token_id", None) is None:
            model_config.pad_token_id = tokenizer.pad_token_id
        return None
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has neither a padding token nor an eos token to pad with")
    tokenizer.pad_token = tokenizer.eos_token
    if model_config is not None and getattr(model_config, "pad_token_id", None) is None:
        model_config.pad_token_id = tokenizer.pad_token_id
    return (f"the tokenizer has no padding token: padding with its eos token {tokenizer.eos_token!r} "
            f"(id {tokenizer.pad_token_id}; padding is masked out, so this changes no embedding)")


# ---------------------------------------------------------------------------------------------- poolings
def last_real_index(attention_mask: Tensor) -> Tensor:
    """(B, T) mask -> (B,) index of each row's last real token, for right padding, left padding or any mask."""
    t = attention_mask.shape[1]
    return (t - 1) - attention_mask.flip(1).to(torch.long).argmax(dim=1)


def first_real_index(attention_mask: Tensor) -> Tensor:
    """(B, T) mask -> (B,) index of each row's first real token."""
    return attention_mask.to(torch.long).argmax(dim=1)


def last_token(token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
    """The state of each sequence's last real token: under causal attention the only one that has read it all.

    token_embeddings (B, T, d), attention_mask (B, T) with 1 for real tokens, padded on either side -> (B, d).
    """
    idx = last_real_index(attention_mask)
    return token_embeddings[torch.arange(token_embeddings.shape[0], device=token_embeddings.device), idx]


def weighted_mean(token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
    """SGPT's position-weighted mean (Muennighoff 2022, arXiv:2202.08904, eq. 1): the i-th real token weighs i.

        v = sum_i w_i h_i,  w_i = i / sum_{j=1}^{L} j,  i = 1..L over the L real tokens

    Later tokens have read more of the sentence, so they weigh more. Positions count real tokens only, so left and
    right padding give the same vector. token_embeddings (B, T, d), attention_mask (B, T) -> (B, d).
    """
    mask = attention_mask.to(token_embeddings.dtype)
    positions = torch.cumsum(mask, dim=1) * mask  # (B, T): 1..L on real tokens, 0 on padding
    weights = positions / positions.sum(dim=1, keepdim=True).clamp(min=1.0)
    return (token_embeddings * weights.unsqueeze(-1)).sum(dim=1)


def pool_decoder(token_embeddings: Tensor, attention_mask: Tensor, pooling: str) -> Tensor:
    """Dispatch for :data:`DECODER_POOLINGS`; (B, T, d), (B, T) -> (B, d)."""
    if pooling == "last_token":
        return last_token(token_embeddings, attention_mask)
    if pooling == "weighted_mean":
        return weighted_mean(token_embeddings, attention_mask)
    raise ValueError(f"unknown decoder pooling {pooling!r}; choose one of {', '.join(DECODER_POOLINGS)}")


def drop_first_token(attention_mask: Tensor) -> Tensor:
    """A copy of the mask with each row's first real token masked out (the attention sink of a decoder).

    Use it to report token-level metrics without that position (its state is an outlier in norm and direction);
    rows with a single real token become empty. (B, T) -> (B, T), same dtype.
    """
    out = attention_mask.clone()
    rows = torch.arange(out.shape[0], device=out.device)
    has_token = attention_mask.to(torch.bool).any(dim=1)
    out[rows[has_token], first_real_index(attention_mask)[has_token]] = 0
    return out


# ---------------------------------------------------------------------------------------------- bidirectional attention
def _configs(model: nn.Module) -> list:
    """The model's config and, for composite models, its text config (the one the decoder layers read)."""
    config = model.config
    out = [config]
    get_text = getattr(config, "get_text_config", None)
    if callable(get_text):
        text = get_text()
        if text is not None and text is not config:
            out.append(text)
    return out


def _attention_modules(model: nn.Module) -> list[nn.Module]:
    """Modules with an ``is_causal`` attribute: every self-attention module of transformers' decoders."""
    return [m for m in model.modules() if isinstance(getattr(m, "is_causal", None), bool)]


def is_bidirectional(model: nn.Module) -> bool:
    """Whether :func:`enable_bidirectional` is in force on this model."""
    return getattr(model, _STATE, None) is not None


def enable_bidirectional(model: nn.Module) -> nn.Module:
    """Let every token attend to every real token (later ones too). Idempotent; undone by :func:`disable_bidirectional`.

    Sets ``is_causal = False`` on the config (transformers' mask functions then build the bidirectional padding
    mask) and on every attention module (so SDPA / flash attention do not fall back to their causal kernels when
    the mask is ``None``). Raises ValueError for a model without a transformers config or attention modules.
    """
    if is_bidirectional(model):
        return model
    if getattr(model, "config", None) is None:
        raise ValueError(f"{type(model).__name__}: not a transformers model (no config)")
    modules = [m for m in _attention_modules(model)]
    if not modules:
        raise ValueError(f"{type(model).__name__}: no attention module with an is_causal flag; "
                         "bidirectional attention is not supported for this architecture")
    state = {"configs": [(c, c.__dict__.get("is_causal", _MISSING)) for c in _configs(model)],
             "modules": [(m, m.is_causal) for m in modules]}
    for config, _ in state["configs"]:
        config.is_causal = False
    for module, _ in state["modules"]:
        module.is_causal = False
    object.__setattr__(model, _STATE, state)  # not a submodule or parameter: plain attribute
    return model


def disable_bidirectional(model: nn.Module) -> nn.Module:
    """Restore what :func:`enable_bidirectional` changed (causal attention again). A no-op if it is not enabled."""
    state = getattr(model, _STATE, None)
    if state is None:
        return model
    for config, old in state["configs"]:
        if old is _MISSING:
            config.__dict__.pop("is_causal", None)
        else:
            config.is_causal = old
    for module, old in state["modules"]:
        module.is_causal = old
    object.__delattr__(model, _STATE)
    return model


@contextlib.contextmanager
def bidirectional(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """``with bidirectional(model): ...`` runs the block with bidirectional attention, then restores the model.

    Nested or already-enabled models are left as they were found. ``enabled=False`` is a no-op (for call sites that
    switch on a flag).
    """
    if not enabled or is_bidirectional(model):
        yield model
        return
    enable_bidirectional(model)
    try:
        yield model
    finally:
        disable_bidirectional(model)


@contextlib.contextmanager
def causal_config_for_saving(model: nn.Module) -> Iterator[nn.Module]:
    """Save a bidirectional model with its original (causal) ``config.json``.

    A ``config.json`` with ``is_causal: false`` would half-apply in plain transformers: the mask functions read it
    but the attention modules keep ``is_causal=True``, so unpadded batches would run causally and padded ones
    bidirectionally. Record the switch in decone's own metadata instead (``"attention": "bidirectional"``) and call
    :func:`enable_bidirectional` after loading.
    """
    state = getattr(model, _STATE, None)
    if state is None:
        yield model
        return
    try:
        for config, old in state["configs"]:
            if old is _MISSING:
                config.__dict__.pop("is_causal", None)
            else:
                config.is_causal = old
        yield model
    finally:
        for config, _ in state["configs"]:
            config.is_causal = False


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def set_attention_dropout(model: nn.Module, p: float) -> int:
    """Dropout on the attention probabilities of every attention module (and in the config, for a later reload).

    Llama, Mistral, Qwen and Gemma have no dropout anywhere else (``attention_dropout`` defaults to 0), so SimCSE's
    two dropout views of a sentence would be identical without it; LLM2Vec's SimCSE step sets 0.3. GPT-2's
    ``attn_pdrop`` is set the same way. Returns the number of modules changed.
    """
    if not 0 <= p < 1:
        raise ValueError(f"attention dropout must be in [0, 1), got {p}")
    changed = 0
    for module in model.modules():
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = float(p)
            changed += 1
        elif isinstance(getattr(module, "attn_dropout", None), nn.Dropout) and isinstance(getattr(module, "is_causal", None), bool):
            module.attn_dropout.p = float(p)
            changed += 1
    for config in _configs(model):
        for key in ("attention_dropout", "attn_pdrop"):
            if key in config.__dict__:
                setattr(config, key, float(p))
    return changed


# ---------------------------------------------------------------------------------------------- the LM head
def load_lm_head(model: nn.Module, source: str | None = None) -> tuple[Tensor, bool]:
    """The output-embedding matrix (V, d) of the checkpoint's causal LM, for a base model loaded with ``AutoModel``.

    Returns ``(weight, tied)``. Where the config ties input and output embeddings (GPT-2, Gemma, small Qwen) the
    weight IS the input embedding parameter (shared, so it follows its training and any resize). Otherwise
    (Llama, Mistral) ``lm_head.weight`` is read from the checkpoint's safetensors in ``source`` (default
    ``config._name_or_path``; a local folder or a cached hub id) as a new tensor. Raises ValueError if not found.
    """
    config = model.config
    embeddings = model.get_input_embeddings()
    text = config.get_text_config() if callable(getattr(config, "get_text_config", None)) else config
    if getattr(text, "tie_word_embeddings", getattr(config, "tie_word_embeddings", True)):
        return embeddings.weight, True
    source = source or getattr(config, "_name_or_path", None)
    if not source:
        raise ValueError("the model's output embeddings are not tied to its input embeddings and its checkpoint is unknown")
    from safetensors import safe_open

    folder = Path(source)
    if not folder.is_dir():
        from transformers.utils import cached_file

        index = cached_file(source, "model.safetensors.index.json", _raise_exceptions_for_missing_entries=False)
        first = index or cached_file(source, "model.safetensors")
        folder = Path(first).parent
    files = _weight_files(folder)
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                if key == "lm_head.weight" or key.endswith(".lm_head.weight"):
                    return f.get_tensor(key), False
    raise ValueError(f"{source}: no lm_head.weight in {', '.join(p.name for p in files) or 'no safetensors file'}")


def _weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        head = [v for k, v in weight_map.items() if k == "lm_head.weight" or k.endswith(".lm_head.weight")]
        return [folder / head[0]] if head else []
    return sorted(folder.glob("model*.safetensors"))


# ---------------------------------------------------------------------------------------------- diagnostics
@torch.inference_mode()
def layer_token_states(model: nn.Module, tokenizer, texts: Sequence[str], max_length: int = 128,
                       batch_size: int = 32, drop_first: bool = False) -> tuple[list[np.ndarray], np.ndarray]:
    """Every layer's state of every real token (embeddings first, as ``hidden_states``).

    Returns ``(layers, sentence_of)``: a list of L+1 float32 arrays (n_tokens, d), and (n_tokens,) the index of the
    text each token came from. ``drop_first`` leaves out each text's first token (the attention sink).
    """
    ensure_pad_token(tokenizer)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    per_layer: list[list[np.ndarray]] = []
    owners: list[np.ndarray] = []
    try:
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start:start + batch_size])
            enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            mask = enc["attention_mask"]
            out = model(input_ids=enc["input_ids"].to(device), attention_mask=mask.to(device),
                        output_hidden_states=True, return_dict=True, use_cache=False)
            keep = drop_first_token(mask) if drop_first else mask
            keep = keep.to(torch.bool)
            if not per_layer:
                per_layer = [[] for _ in out.hidden_states]
            for layer, states in zip(per_layer, out.hidden_states):
                layer.append(states.float().cpu()[keep].numpy())
            owners.append((torch.arange(len(chunk))[:, None].expand_as(keep)[keep] + start).numpy())
    finally:
        model.train(was_training)
    return [np.concatenate(x) for x in per_layer], np.concatenate(owners)


def cross_sentence_pairs(sentence_of: np.ndarray, n_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` random pairs of token indices from different sentences (Ethayarajh 2019's random word pairs)."""
    rng = np.random.default_rng(seed)
    n = len(sentence_of)
    i = rng.integers(0, n, size=n_pairs * 2)
    j = rng.integers(0, n, size=n_pairs * 2)
    ok = sentence_of[i] != sentence_of[j]
    i, j = i[ok][:n_pairs], j[ok][:n_pairs]
    if len(i) < n_pairs:
        raise ValueError("too few tokens from different sentences for the pairs asked for")
    return i, j


def mean_pair_cosine(states: np.ndarray, i: np.ndarray, j: np.ndarray) -> float:
    a = states[i].astype(np.float64)
    b = states[j].astype(np.float64)
    na = np.linalg.norm(a, axis=1).clip(min=1e-12)
    nb = np.linalg.norm(b, axis=1).clip(min=1e-12)
    return float(((a * b).sum(axis=1) / (na * nb)).mean())


def token_anisotropy(model: nn.Module, tokenizer, texts: Sequence[str], n_pairs: int = 3000, seed: int = 0,
                     max_length: int = 128, batch_size: int = 32) -> dict[str, list[float]]:
    """Per layer (0 = embeddings), the mean cosine of random token pairs from different sentences.

    Returns ``{"all_tokens": [...], "without_first": [...]}``, one float per layer: with every real token, and with
    each sentence's first token (the attention sink) left out. Ethayarajh (2019) reports GPT-2's last layer at
    0.978 and BERT-base's at 0.477 on this measure (kawine/contextual, ``*/embedding_space_stats.json``).
    """
    layers, owner = layer_token_states(model, tokenizer, texts, max_length, batch_size)
    first = np.r_[True, owner[1:] != owner[:-1]]  # each text's first token (its tokens are contiguous)
    out: dict[str, list[float]] = {}
    for key, keep in (("all_tokens", np.ones_like(first)), ("without_first", ~first)):
        i, j = cross_sentence_pairs(owner[keep], n_pairs, seed)
        out[key] = [mean_pair_cosine(states[keep], i, j) for states in layers]
    return out


#: Ethayarajh (2019), "mean cosine similarity across words" per layer (kawine/contextual, embedding_space_stats.json).
ETHAYARAJH_2019 = {
    "gpt2": [0.611, 0.644, 0.597, 0.614, 0.587, 0.573, 0.578, 0.582, 0.595, 0.617, 0.667, 0.758, 0.978],
    "bert-base-cased": [0.105, 0.168, 0.219, 0.245, 0.327, 0.377, 0.42, 0.398, 0.399, 0.484, 0.561, 0.675, 0.477],
}


def read_stsb_sentences(path: Path, n: int, seed: int) -> list[str]:
    """``n`` distinct sentences of an STS-B csv (columns 6 and 7), drawn at random with ``seed``, in file order."""
    texts: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        if len(cols) >= 7:
            texts.extend([cols[5], cols[6]])
    unique = list(dict.fromkeys(t for t in texts if t.strip()))
    rng = np.random.default_rng(seed)
    return [unique[k] for k in sorted(rng.choice(len(unique), size=min(n, len(unique)), replace=False))]


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    from transformers import AutoModel, AutoTokenizer

    parser = argparse.ArgumentParser(prog="python -m decone.decoders",
                                     description="Per-layer average cosine of random token pairs (Ethayarajh 2019).")
    parser.add_argument("model")
    parser.add_argument("sentences", nargs="?", default="../shared/data/sts/STSBenchmark/sts-test.csv",
                        help="an STS-B csv (sentences from columns 6 and 7)")
    parser.add_argument("--sentences", dest="n", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bidirectional", action="store_true")
    args = parser.parse_args(argv)
    texts = read_stsb_sentences(Path(args.sentences), args.n, args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModel.from_pretrained(args.model)
    note = ensure_pad_token(tokenizer, model.config)
    if note:
        print(note)
    with bidirectional(model, args.bidirectional):
        result = token_anisotropy(model, tokenizer, texts, args.pairs, args.seed)
    print(json.dumps({"model": args.model, "sentences": len(texts), "pairs": args.pairs, **result}))


if __name__ == "__main__":
    main()
