"""TSDAE: a sequential denoising auto-encoder. The encoder embeds a sentence with most of its words deleted; a
transformer decoder reconstructs the original sentence from that one vector.

    noisy = delete each word with probability 0.6 (at least one word stays)
    z = encoder(noisy)                                    # (B, d): the sentence embedding, [CLS] pooling
    L = - sum_t log p_decoder(x_t | x_<t, z) / #tokens    # teacher-forced, cross-attention to z alone

The decoder is the encoder's architecture as a causal LM (``AutoModelForCausalLM`` of the same config with
``is_decoder=True, add_cross_attention=True``). Its cross-attention sees ONE key/value, the sentence embedding, so
everything the decoder learns about the sentence must pass through z. As in the paper and sentence-transformers'
``DenoisingAutoEncoderLoss``, the decoder's weights are tied to the encoder's (same parameter objects: embeddings,
self-attention, feed-forward); only the cross-attention layers and the LM head's transform and bias are its own. Those
are trained, live in the objective (so a checkpoint holds them) and are NOT written to the model folder, which holds
the encoder alone. The LM head starts from the model folder's masked-LM head where it has one (as
sentence-transformers loads the decoder with ``from_pretrained``), else from random initialisation, as the
cross-attention always does.

Defaults and where they come from (Wang, Reimers and Gurevych 2021, arXiv:2104.06979, section 3 and its
sentence-transformers example ``examples/sentence_transformer/unsupervised_learning/TSDAE``):

* deletion noise, ratio 0.6; [CLS] pooling (``cls_before_pooler``); tied encoder-decoder: paper, section 3/5;
* lr 3e-5, batch 8, 1 epoch, weight decay 0: the sentence-transformers TSDAE example;
* max length 128: decone's choice (the example keeps the model's own limit, 512 for BERT; training sentences are far
  shorter, and longer ones cost memory for nothing).

Differences: the example uses a constant learning rate, decone's trainer a linear decay (``--warmup-ratio 0``); the
words are split with a regular expression (words, and each punctuation mark on its own) instead of NLTK's
``word_tokenize``, and rejoined with spaces except before closing punctuation (WordPiece splits punctuation either
way, so BERT sees the same tokens).
"""

from __future__ import annotations

import copy
import random
import re
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from decone.errors import ConfigError
from decone.methods import Method, register
from decone.objectives import Objective

_WORDS = re.compile(r"\w+(?:['\u2019]\w+)*|[^\w\s]")


@dataclass
class TSDAEOptions:
    """TSDAE's own settings (``--set NAME=VALUE``); paper values as defaults."""

    deletion_ratio: float = 0.6  # the probability that a word is deleted from the encoder's input
    tie_encoder_decoder: bool = True  # the decoder shares the encoder's weights (paper and sentence-transformers)

    def validate(self) -> None:
        if not 0.0 <= self.deletion_ratio < 1.0:
            raise ConfigError(f"--set deletion_ratio must be in [0, 1), got {self.deletion_ratio}")


def delete_words(text: str, ratio: float, rng: random.Random) -> str:
    """Delete each word (and punctuation mark) with probability ``ratio``; at least one stays (TSDAE's noise)."""
    words = _WORDS.findall(text)
    if not words:
        return text
    keep = [rng.random() >= ratio for _ in words]
    if not any(keep):
        keep[rng.randrange(len(words))] = True
    kept = " ".join(w for w, k in zip(words, keep) if k)
    return re.sub(r" ([.,!?;:%)\]}])", r"\1", kept)


def deletion_views(ratio: float):
    """[noisy, original]: the sentence with words deleted (the encoder's input) and the sentence (the target)."""

    def views(batch, rng):
        texts = [row[0] for row in batch]
        return [[delete_words(t, ratio, rng) for t in texts], list(texts)]

    return views


class TSDAE(Objective):
    """The reconstruction loss of a decoder that cross-attends to the sentence embedding only."""

    gradcache_refusal = ("its loss decodes each sentence's tokens from its embedding, not a function of the "
                         "embeddings alone (and, per example, needs no large batch)")
    distributed_refusal = "its decoder loss has not been verified on several processes yet"
    #: with the decoder tied (the default); an untied decoder is a model of its own, which LoRA leaves alone
    TIED_LORA_REFUSAL = ("its decoder shares the encoder's weight tensors, which LoRA freezes; its adapters would not "
                         "reach the decoder, which would then decode with the untrained base (a different method from "
                         "TSDAE's tied encoder-decoder; --set tie_encoder_decoder=false unties them)")

    def __init__(self, tie_encoder_decoder: bool = True):
        super().__init__()
        self.tie_encoder_decoder = tie_encoder_decoder
        self.lora_refusal = self.TIED_LORA_REFUSAL if tie_encoder_decoder else None
        self.decoder: nn.Module | None = None

    def setup(self, model, data) -> None:
        encoder = getattr(model, "encoder", model)
        self.decoder = build_decoder(encoder, tie=self.tie_encoder_decoder)

    def loss(self, model, views: list[list[str]], labels: Tensor | None, use_bf16: bool) -> Tensor:
        """views [noisy, original] of B texts -> mean token cross-entropy of reconstructing ``original``."""
        if self.decoder is None:
            raise RuntimeError("TSDAE.setup(model, data) was not called")
        encoder = model.encoder
        noisy, original = views[0], views[1]
        z = model.embed(noisy, use_bf16)  # (B, d) fp32, with the training head if any
        max_length = model.max_length or encoder.max_length
        ids = encoder.tokenizer(list(original), add_special_tokens=True, truncation=True, max_length=max_length,
                                return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        feats = {k: v.to(encoder.device) for k, v in encoder.collate(ids).items()}
        target, mask = feats["input_ids"], feats["attention_mask"]  # (B, L)
        labels_ids = target[:, 1:].masked_fill(mask[:, 1:] == 0, -100)  # (B, L-1): next token, padding ignored
        with torch.autocast(device_type=encoder.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            logits = self.decoder(
                input_ids=target[:, :-1], attention_mask=mask[:, :-1],
                encoder_hidden_states=z[:, None, :],  # (B, 1, d): the embedding is the decoder's only memory
                encoder_attention_mask=torch.ones(z.shape[0], 1, dtype=mask.dtype, device=z.device),
                use_cache=False,
            ).logits  # (B, L-1, V)
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels_ids.reshape(-1), ignore_index=-100)


def build_decoder(encoder, tie: bool = True) -> nn.Module:
    """The encoder's architecture as a causal LM with cross-attention; its weights tied to the encoder's if ``tie``.

    The decoder loads from the encoder's source (so a masked-LM head there initialises its LM head); a source that
    cannot be read that way gives a randomly initialised decoder, tied all the same.
    """
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    hf = encoder.model
    config = copy.deepcopy(hf.config)
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ConfigError(f"tsdae: {config.model_type!r} models have no causal-LM (decoder) class in transformers; "
                          "TSDAE needs one (BERT, RoBERTa, ...)")
    hidden = int(config.hidden_size)
    if encoder.dim != hidden:
        raise ConfigError(f"tsdae: the sentence embedding has {encoder.dim} dimensions but the decoder's "
                          f"cross-attention expects {hidden} (drop the dense layers or use another --head)")
    config.is_decoder, config.add_cross_attention = True, True
    source = getattr(hf, "name_or_path", None) or getattr(encoder, "source", None)
    decoder = None
    if source:
        try:
            decoder = AutoModelForCausalLM.from_pretrained(source, config=config)
        except Exception:  # no loadable weights there (e.g. a hub name offline): initialise, then tie
            decoder = None
    if decoder is None:
        decoder = AutoModelForCausalLM.from_config(config)
    decoder.to(encoder.device)
    if tie:
        n = tie_weights(hf, decoder)
        if n == 0:
            raise ConfigError(f"tsdae: no decoder weight matches the {config.model_type} encoder's; cannot tie them")
    return decoder


def tie_weights(encoder_model: nn.Module, decoder: nn.Module) -> int:
    """Make the decoder's base model use the encoder's parameter objects (matched by name and shape); returns how
    many were tied. The LM head's output matrix follows the (now shared) input embedding, as the model ties it."""
    base = getattr(decoder, "base_model", decoder)
    encoder_modules = dict(encoder_model.named_modules())
    tied = 0
    for name, param in list(base.named_parameters()):
        module_name, _, attr = name.rpartition(".")
        source = getattr(encoder_modules.get(module_name), attr, None)
        if isinstance(source, nn.Parameter) and source.shape == param.shape:
            setattr(base.get_submodule(module_name) if module_name else base, attr, source)
            tied += 1
    out_emb, in_emb = decoder.get_output_embeddings(), decoder.get_input_embeddings()
    if (out_emb is not None and in_emb is not None and getattr(decoder.config, "tie_word_embeddings", True)
            and out_emb.weight.shape == in_emb.weight.shape):
        out_emb.weight = in_emb.weight
    return tied


def _options(config) -> TSDAEOptions:
    return getattr(config, "method_options", None) or TSDAEOptions()


register(Method(
    name="tsdae",
    summary="TSDAE: a tied transformer decoder reconstructs each sentence from the embedding of a copy with 60% of "
            "its words deleted.",
    citation="Wang, Reimers and Gurevych 2021, TSDAE: Using Transformer-based Sequential Denoising Auto-Encoder for "
             "Unsupervised Sentence Embedding Learning (Findings of EMNLP), arXiv:2104.06979",
    data="sentences",
    views=lambda config, tokenizer: deletion_views(_options(config).deletion_ratio),
    objective=lambda config: TSDAE(_options(config).tie_encoder_decoder),
    defaults=dict(pooling="cls_before_pooler", head="none", lr=3e-5, batch_size=8, max_length=128, epochs=1),
    options=TSDAEOptions,
))
