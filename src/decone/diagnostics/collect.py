"""Collecting embeddings from an :class:`~decone.encoder.Encoder` for the diagnostics: the only part that runs a model.

* :func:`sentence_embeddings`: the encoder's output (pooling, dense layers, normalisation), (n, d).
* :func:`layer_embeddings`: every hidden layer pooled the encoder's way, (L + 1, n, H) (layer 0 = embeddings).
* :func:`word_states`: whole-word vectors of every layer, for the token-level metrics. A word is what the fast
  tokenizer's pre-tokenizer calls a word (``word_ids``); its vector is the mean of its word pieces. Special tokens are
  dropped. Slow tokenizers (no ``word_ids``) fall back to one word per token, with ``##``/``Ġ``/``▁`` markers removed
  from the word's text.

All run in eval mode without gradients and restore the encoder's training mode afterwards.
"""

from __future__ import annotations

import sys
from typing import Sequence

import numpy as np
import torch

from decone.diagnostics.tokens import WordStates


def num_hidden_states(encoder) -> int:
    """Number of hidden states the model returns: transformer layers + 1 (the embedding layer)."""
    return int(encoder.model.config.num_hidden_layers) + 1


def sentence_embeddings(encoder, sentences: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
    """The encoder's sentence embeddings as it outputs them (dense layers and normalisation included). -> (n, d)."""
    return encoder.encode(list(sentences), batch_size=batch_size, show_progress=show_progress)


def layer_embeddings(
    encoder,
    sentences: Sequence[str],
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
    show_progress: bool | None = None,
) -> np.ndarray:
    """Every hidden layer pooled with the encoder's pooling ([CLS] for the cls poolings, else the padding-aware mean;
    no dense layers). ``layers`` defaults to all, 0 = embedding layer. -> (len(layers), n, H)."""
    if layers is None:
        layers = list(range(num_hidden_states(encoder)))
    return encoder.encode(list(sentences), batch_size=batch_size, show_progress=show_progress, layers=list(layers))


@torch.inference_mode()
def output_and_layers(
    encoder,
    sentences: Sequence[str],
    batch_size: int = 64,
    show_progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One pass giving both :func:`sentence_embeddings` (n, d) and :func:`layer_embeddings` (L + 1, n, H).

    Batches texts by length like :meth:`Encoder.encode`; each layer is pooled as ``encode(layers=...)`` does.
    """
    from decone.encoder import pool

    sentences = list(sentences)
    n_states = num_hidden_states(encoder)
    hidden = int(encoder.model.config.hidden_size)
    out = np.zeros((len(sentences), encoder.dim), dtype=np.float32)
    layers = np.zeros((n_states, len(sentences), hidden), dtype=np.float32)
    if not sentences:
        return out, layers

    def embed(idx: np.ndarray, feats: dict) -> None:
        res = encoder(feats, output_hidden_states=True)
        out[idx] = res["embedding"].float().cpu().numpy()
        stacked = [pool((h,), feats["attention_mask"], encoder.layer_pooling) for h in res["hidden_states"]]
        layers[:, idx] = torch.stack(stacked).float().cpu().numpy()  # (L + 1, B, H)

    encoder.for_each_batch(sentences, batch_size, embed, show_progress)
    return out, layers


@torch.inference_mode()
def word_states(
    encoder,
    sentences: Sequence[str],
    batch_size: int = 32,
    layers: Sequence[int] | None = None,
    show_progress: bool | None = None,
) -> WordStates:
    """Whole-word vectors of every hidden layer (mean of the word's pieces), for :func:`tokens.token_metrics`.

    Returns:
        :class:`WordStates` with vectors (len(layers), n_words, H) float32.
    """
    from decone.encoder import Progress as _progress

    sentences = list(sentences)
    n_states = num_hidden_states(encoder)
    layers = list(range(n_states)) if layers is None else list(layers)
    tok = encoder.tokenizer
    fast = bool(getattr(tok, "is_fast", False))
    special = set(getattr(tok, "all_special_ids", []) or [])
    device = encoder.device
    was_training = encoder.training
    encoder.eval()
    chunks: list[np.ndarray] = []
    words: list[str] = []
    sentence_ids: list[int] = []
    batches = [range(i, min(i + batch_size, len(sentences))) for i in range(0, len(sentences), batch_size)]
    if show_progress is None:
        show_progress = len(batches) > 20 and sys.stderr.isatty()
    progress = _progress(show_progress, "word vectors", len(batches))
    try:
        for idx in batches:
            texts = [sentences[i] for i in idx]
            enc = tok(texts, truncation=True, max_length=encoder.max_length, padding=True, return_tensors="pt",
                      return_offsets_mapping=fast)
            feats = {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"].to(device)}
            hs = encoder(feats, output_hidden_states=True)["hidden_states"]
            stacked = torch.stack([hs[k] for k in layers]).float().cpu().numpy()  # (n_layers, B, T, H)
            for b, sent_idx in enumerate(idx):
                ids = enc["input_ids"][b].tolist()
                mask = enc["attention_mask"][b].tolist()
                spans = _word_spans(enc, b, ids, mask, special, fast, tok, texts[b])
                for text, positions in spans:
                    chunks.append(stacked[:, b, positions].mean(axis=1))  # (n_layers, H)
                    words.append(text.lower())
                    sentence_ids.append(sent_idx)
            progress.advance()
    finally:
        progress.close()
        encoder.train(was_training)
    hidden = int(encoder.model.config.hidden_size)
    vectors = np.stack(chunks, axis=1).astype(np.float32) if chunks else np.zeros((len(layers), 0, hidden), np.float32)
    return WordStates(vectors=vectors, words=words, sentence_ids=np.asarray(sentence_ids, dtype=np.int64), layers=layers)


def _word_spans(enc, b: int, ids: list[int], mask: list[int], special: set[int], fast: bool, tok, text: str):
    """[(word text, [token positions])] for one sequence of a batch, special tokens and padding dropped."""
    spans: dict[int, list[int]] = {}
    if fast:
        word_ids = enc.word_ids(b)
        offsets = enc["offset_mapping"][b].tolist()
        for pos, wid in enumerate(word_ids):
            if wid is None or not mask[pos] or ids[pos] in special:
                continue
            spans.setdefault(wid, []).append(pos)
        out = []
        for wid in sorted(spans):
            positions = spans[wid]
            start, end = offsets[positions[0]][0], offsets[positions[-1]][1]
            word = text[start:end].strip()  # byte-level BPE (GPT-2) offsets keep the space before a word
            if word:
                out.append((word, positions))
        return out
    out = []
    for pos, tid in enumerate(ids):
        if not mask[pos] or tid in special:
            continue
        piece = tok.convert_ids_to_tokens(tid)
        out.append((piece.replace("##", "").replace("Ġ", "").replace("▁", ""), [pos]))
    return out
