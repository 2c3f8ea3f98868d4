"""MNTP: masked next-token prediction, LLM2Vec's second step (BehnamGhader et al. 2024, arXiv:2404.05961).

With bidirectional attention switched on, 20% of the tokens are masked and each masked token at position i is
predicted from the model's output at position i - 1 (the next-token head the decoder already has), so the model
learns to use the future context it can now see without giving up what its LM head reads. LLM2Vec trains it with
LoRA (r 16, alpha 32, dropout 0.05 on every attention and MLP linear) for 1000 steps of batch 32 at 512 tokens,
learning rate 5e-5 (the Hugging Face Trainer default, which its configs keep), with the Hugging Face MLM collator:
of the chosen tokens 80% become the mask token, 10% a random token, 10% stay.

Mask token: the tokenizer's own, else ``<mask>`` is added, the embeddings resized if they have no spare row for
it (said on stderr); LLM2Vec
itself uses the existing ``_`` for Llama and Mistral (``--set mask_token=_``), which needs no new row (a new row
stays at its mean initialisation when LoRA freezes the embeddings). The LM head is the checkpoint's: the input
embedding matrix where the model ties them (GPT-2, Gemma, small Qwen), else ``lm_head.weight`` read from the
checkpoint (Llama, Mistral) and trained alongside, as in LLM2Vec; it is not saved (the encoder folder is the model).
Gemma 2 and 3 soft-cap their final logits (``final_logit_softcapping``, 30): the loss applies the same cap.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from decone import augment
from decone.lora import LoRAOptions, is_lora
from decone.decoders import bidirectional, enable_bidirectional, ensure_pad_token, is_decoder_config, load_lm_head
from decone.errors import ConfigError
from decone.methods import Method, register
from decone.objectives import Objective

ADDED_MASK = "<mask>"


@dataclass
class MNTPOptions(LoRAOptions):
    """MNTP's own settings (``--set NAME=VALUE``), LLM2Vec's values as defaults; LoRA's from :class:`LoRAOptions`."""

    mask_ratio: float = 0.2  #: share of the real tokens (first excluded) chosen for prediction
    replace_ratio: float = 0.8  #: of those, the share replaced by the mask token; half the rest random, half kept
    mask_token: str = ""  #: "" = the tokenizer's mask token, else add <mask>; or an existing token, e.g. "_"
    train_head: bool = True  #: train an untied LM head (Llama, Mistral), as LLM2Vec does

    def validate(self) -> None:
        if not 0 < self.mask_ratio < 1:
            raise ConfigError(f"--set mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if not 0 <= self.replace_ratio <= 1:
            raise ConfigError(f"--set replace_ratio must be in [0, 1], got {self.replace_ratio}")
        super().validate()


def choose_masked(input_ids: Tensor, attention_mask: Tensor, ratio: float, special_ids: set[int] | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
    """(B, T) bool: the positions to predict. Each real token but the first of its row (it has no previous output
    to be predicted from) and special tokens is chosen with probability ``ratio``; at least one in the batch."""
    candidates = attention_mask.to(torch.bool).clone()
    first = attention_mask.to(torch.long).argmax(dim=1)
    candidates[torch.arange(len(first)), first] = False
    for sid in special_ids or ():
        candidates &= input_ids != sid
    chosen = (torch.rand(input_ids.shape, generator=generator) < ratio) & candidates
    if not chosen.any() and candidates.any():  # a tiny batch drew nothing: predict one token anyway
        flat = candidates.flatten().nonzero().squeeze(1)
        chosen.view(-1)[flat[torch.randint(len(flat), (1,), generator=generator)]] = True
    return chosen


def corrupt(input_ids: Tensor, chosen: Tensor, mask_id: int, vocab_size: int, replace_ratio: float = 0.8,
            generator: torch.Generator | None = None) -> Tensor:
    """The model's input: chosen tokens replaced by ``mask_id`` (``replace_ratio``), half of the rest by a random
    token and half kept (the Hugging Face MLM collator's 80/10/10). (B, T) -> (B, T)."""
    out = input_ids.clone()
    u = torch.rand(input_ids.shape, generator=generator)
    to_mask = chosen & (u < replace_ratio)
    to_random = chosen & (u >= replace_ratio) & (u < replace_ratio + (1 - replace_ratio) / 2)
    out[to_mask] = mask_id
    out[to_random] = torch.randint(vocab_size, (int(to_random.sum()),), generator=generator)
    return out


def mntp_loss(hidden: Tensor, targets: Tensor, chosen: Tensor, head_weight: Tensor, head_bias: Tensor | None = None,
              softcap: float | None = None) -> Tensor:
    """Cross-entropy of each chosen token at position i, predicted from the output at i - 1.

    hidden (B, T, d) last-layer states, targets (B, T) the original ids, chosen (B, T) bool with column 0 False,
    head_weight (V, d) -> scalar mean over the chosen tokens (logits only at those positions: B*T*V never exists).
    ``softcap``: Gemma 2/3's final-logit soft-capping, ``cap * tanh(logits / cap)``, as the model's own LM head does.
    """
    rows, cols = chosen.nonzero(as_tuple=True)
    logits = F.linear(hidden[rows, cols - 1], head_weight, head_bias).float()  # (n, V)
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    return F.cross_entropy(logits, targets[rows, cols])


def logit_softcap(config) -> float | None:
    """The final-logit soft-capping of a model family that has one (Gemma 2 and 3: 30.0), else None."""
    text = config.get_text_config() if callable(getattr(config, "get_text_config", None)) else config
    cap = getattr(text, "final_logit_softcapping", None)
    return float(cap) if cap else None


class MNTP(Objective):
    """Masked next-token prediction; owns the LM head (see the module docstring)."""

    gradcache_refusal = "MNTP predicts tokens from the model's token states; it has no sentence embeddings to cache"

    def __init__(self, options: MNTPOptions | None = None):
        super().__init__()
        self.options = options or MNTPOptions()
        self.lm_head: nn.Linear | None = None  # untied models only; tied ones read the input embeddings
        self.mask_id: int | None = None
        self.special_ids: set[int] = set()
        self.notes: list[str] = []

    # ------------------------------------------------------------------ setup
    def setup(self, model, data=None) -> None:
        encoder, opts = model.encoder, self.options
        hf, tok = encoder.model, encoder.tokenizer
        if not is_decoder_config(hf.config):
            raise ConfigError(f"mntp: {hf.config.model_type!r} is not a decoder (MNTP adapts causal LMs: GPT-2, Llama, "
                              "Mistral, Qwen, Gemma)")
        already_lora = is_lora(hf)
        self._note(ensure_pad_token(tok, hf.config))
        self.mask_id = self._mask_token(tok, hf, resize_ok=not already_lora)
        self.special_ids = {i for i in tok.all_special_ids if i != self.mask_id}
        weight, tied = load_lm_head(hf.get_base_model() if already_lora else hf)
        if not tied:
            self.lm_head = nn.Linear(weight.shape[1], hf.get_input_embeddings().weight.shape[0], bias=False)
            with torch.no_grad():
                rows = min(weight.shape[0], self.lm_head.weight.shape[0])
                self.lm_head.weight[:rows] = weight[:rows]
                self.lm_head.weight[rows:] = weight.mean(dim=0)  # an added mask token: the mean row
            self.lm_head.weight.requires_grad_(opts.train_head)
            self.lm_head.to(hf.get_input_embeddings().weight.device)
        self._note(opts.attach_to(encoder))
        hf = encoder.model
        enable_bidirectional(hf)

    def _mask_token(self, tok, hf, resize_ok: bool) -> int:
        want = self.options.mask_token
        if not want and tok.mask_token is not None:
            return tok.mask_token_id
        if want:
            ids = tok.convert_tokens_to_ids([want])
            if ids and ids[0] is not None and ids[0] != tok.unk_token_id:
                self._note(f"mntp: using the existing token {want!r} (id {ids[0]}) as the mask token")
                return ids[0]
        token = want or ADDED_MASK
        if not resize_ok:
            raise ConfigError(f"mntp: the tokenizer has no {token!r} token and LoRA is already applied, so the "
                              "embeddings cannot grow; add the token before LoRA or --set mask_token=<an existing token>")
        if want:
            tok.add_tokens([token], special_tokens=True)
        else:
            tok.add_special_tokens({"mask_token": token})
        new_id = tok.convert_tokens_to_ids(token)
        old = hf.get_input_embeddings().weight
        if new_id < old.shape[0]:  # the matrix has spare rows (vocabularies are often padded to a multiple of 64)
            where = f"an existing spare row of the {old.shape[0]}-row embedding matrix"
        else:
            grad = old.requires_grad
            hf.resize_token_embeddings(len(tok))
            hf.get_input_embeddings().weight.requires_grad_(grad)
            where = f"the embeddings resized to {len(tok)} rows"
        self._note(f"mntp: the tokenizer has no mask token: added {token!r} (id {new_id}; {where})")
        return tok.convert_tokens_to_ids(token)

    def _note(self, message: str | None) -> None:
        if message:
            self.notes.append(message)
            print(f"note: {message}", file=sys.stderr)

    # ------------------------------------------------------------------ the loss
    def head_weight(self, hf) -> Tensor:
        return self.lm_head.weight if self.lm_head is not None else hf.get_input_embeddings().weight

    def batch(self, model, texts: list[str]) -> dict[str, Tensor]:
        """Tokenise (training length, right padding), choose and corrupt: input_ids, attention_mask, targets, chosen."""
        encoder = model.encoder
        tok = encoder.tokenizer
        max_length = getattr(model, "max_length", None) or encoder.max_length
        ids = tok(list(texts), truncation=True, max_length=max_length, return_attention_mask=False)["input_ids"]
        width = max(len(x) for x in ids)
        targets = torch.full((len(ids), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, row in enumerate(ids):
            targets[i, :len(row)] = torch.as_tensor(row)
            mask[i, :len(row)] = 1
        chosen = choose_masked(targets, mask, self.options.mask_ratio, self.special_ids)
        vocab = encoder.model.get_input_embeddings().weight.shape[0]
        inputs = corrupt(targets, chosen, self.mask_id, vocab, self.options.replace_ratio)
        return {"input_ids": inputs, "attention_mask": mask, "targets": targets, "chosen": chosen}

    def loss(self, model, views: list[list[str]], labels: Tensor | None, use_bf16: bool) -> Tensor:
        hf = model.encoder.model
        device = hf.get_input_embeddings().weight.device
        b = {k: v.to(device) for k, v in self.batch(model, views[0]).items()}
        with bidirectional(hf), torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            hidden = hf(input_ids=b["input_ids"], attention_mask=b["attention_mask"], use_cache=False,
                        return_dict=True).last_hidden_state
            return mntp_loss(hidden, b["targets"], b["chosen"], self.head_weight(hf), softcap=logit_softcap(hf.config))


register(Method(
    name="mntp",
    summary="LLM2Vec step 2 for decoders: bidirectional attention, mask 20% of tokens, predict each from the "
            "previous position (LoRA r 16).",
    citation="BehnamGhader, Adlakha, Mosbach, Bahdanau, Chapados and Reddy 2024, LLM2Vec: Large Language Models Are "
             "Secretly Powerful Text Encoders (COLM), arXiv:2404.05961",
    data="sentences",
    backbone="decoder",
    views=lambda config, tokenizer: augment.dropout_views(1),
    objective=lambda config: MNTP(config.method_options),
    defaults=dict(pooling="mean", head="none", lr=5e-5, batch_size=32, max_steps=1000, max_length=512, epochs=1),
    options=MNTPOptions,
))
