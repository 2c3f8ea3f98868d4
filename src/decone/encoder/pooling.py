"""The ONE pooling of decone, used by training, encoding, evaluation, diagnostics and the CLI; dense layers after it.

Poolings (names follow SimCSE's evaluation tool, Gao et al. 2021, arXiv:2104.08821):

* ``cls``               the model's pooler output (BERT: dense + tanh over the last-layer [CLS]); the last-layer [CLS]
                        hidden state where the model has no pooler.
* ``cls_before_pooler`` the last-layer [CLS] hidden state.
* ``mean``              the mean of the last layer over real (non-padding) tokens.
* ``first_last_avg``    the mean over real tokens of the average of the first transformer layer and the last layer
                        (``hidden_states[1]`` and ``hidden_states[-1]``; Su et al. 2021, Gao et al. 2021).
* ``last_token``        the last real token's state (decoders: under causal attention the only one that read it all).
* ``weighted_mean``     SGPT's position-weighted mean of the last layer (Muennighoff 2022, arXiv:2202.08904).
* ``mask``              the last-layer state at the [MASK] token of a prompt template wrapped around each text
                        (PromptBERT, Jiang et al. 2022, arXiv:2201.04337); the template is part of the pooling.

:class:`Pooling` is the module that applies one of them and reads and writes its own settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

from decone.decoders import DECODER_POOLINGS, pool_decoder
from decone.errors import ConfigError

POOLINGS = ("cls", "cls_before_pooler", "mean", "first_last_avg", "mask", "last_token", "weighted_mean")
ACTIVATIONS = {"tanh": nn.Tanh, "identity": nn.Identity}
ST_ACTIVATION = {
    "tanh": "torch.nn.modules.activation.Tanh",
    "identity": "torch.nn.modules.linear.Identity",
}


def pool(
    hidden_states: Sequence[Tensor],
    attention_mask: Tensor,
    pooling: str,
    pooler_output: Tensor | None = None,
    mask_positions: Tensor | None = None,
) -> Tensor:
    """Pool token states into one vector per sequence, ignoring padding.

    Args:
        hidden_states: the model's hidden states, embeddings first: a sequence of (B, L, H) tensors. Only the last
            is needed except for ``first_last_avg``, which needs ``hidden_states[1]`` too.
        attention_mask: (B, L), 1 for real tokens and 0 for padding.
        pooling: one of :data:`POOLINGS`.
        pooler_output: (B, H), the model's pooler output, used by ``cls`` where the model has a pooler.
        mask_positions: (B,) the [MASK] position of each row, for ``mask``.

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
    if pooling in DECODER_POOLINGS:
        return pool_decoder(last, attention_mask, pooling)
    if pooling == "mask":
        if mask_positions is None:
            raise ValueError("mask pooling needs the [MASK] position of each row")
        return last[torch.arange(last.shape[0], device=last.device), mask_positions]
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
            "activation_function": ST_ACTIVATION[self.activation_name],
        }


class MLPHead(Dense):
    """SimCSE's MLP head (Gao et al. 2021, section 3): Linear(d, d) + tanh over the pooled vector. (B, d) -> (B, d)."""

    def __init__(self, dim: int):
        super().__init__(dim, dim, activation="tanh")


def pooler_as_dense(pooler: nn.Module, hidden: int) -> Dense | None:
    """BERT's pooler (dense + tanh over [CLS]) as a Dense module, so sentence-transformers reproduces ``cls``."""
    linear = getattr(pooler, "dense", None)
    act = getattr(pooler, "activation", None)
    if not isinstance(linear, nn.Linear) or not isinstance(act, nn.Tanh):
        return None
    layer = Dense(hidden, linear.out_features, "tanh")
    layer.linear.load_state_dict(linear.state_dict())
    return layer


class Pooling(nn.Module):
    """One pooling, with the settings it needs, saved and loaded by itself.

    Args:
        mode: one of :data:`POOLINGS`.
        template: for ``mask``, the prompt wrapped around each text, with ``[X]`` for the text and ``[MASK]`` for
            the token whose state is the embedding, e.g. PromptBERT's ``This sentence : "[X]" means [MASK] .``.
    """

    def __init__(self, mode: str = "mean", template: str | None = None):
        super().__init__()
        if mode not in POOLINGS:
            raise ConfigError(f"unknown pooling {mode!r}; choose one of {', '.join(POOLINGS)}")
        if (mode == "mask") != (template is not None):
            raise ConfigError("mask pooling needs a prompt template (and only mask pooling takes one)")
        if template is not None and (template.count("[X]") != 1 or template.count("[MASK]") != 1):
            raise ConfigError(f"template {template!r}: needs exactly one [X] (the text) and one [MASK]")
        self.mode = mode
        self.template = template

    @property
    def needs_all_layers(self) -> bool:
        return self.mode == "first_last_avg"

    @property
    def sentence_transformers_mode(self) -> str | None:
        """The sentence-transformers ``Pooling`` mode that reproduces this one, or None where there is none."""
        return {"cls": "cls", "cls_before_pooler": "cls", "mean": "mean", "last_token": "lasttoken",
                "weighted_mean": "weightedmean"}.get(self.mode)

    def forward(self, hidden_states: Sequence[Tensor], attention_mask: Tensor, pooler_output: Tensor | None = None,
                input_ids: Tensor | None = None, mask_token_id: int | None = None) -> Tensor:
        """(B, L, H) states (embeddings first), (B, L) mask -> (B, H)."""
        positions = None
        if self.mode == "mask":  # the last [MASK] of each row: the template's, after any in the text
            hits = (input_ids == mask_token_id) & attention_mask.bool()  # (B, L)
            positions = (hits * torch.arange(1, hits.shape[1] + 1, device=hits.device)).argmax(dim=1)  # (B,)
        return pool(hidden_states, attention_mask, self.mode, pooler_output, positions)

    # ------------------------------------------------------------------ the template, at the token level
    def template_parts(self, tokenizer) -> tuple[list[int], list[int], list[int], list[int]]:
        """Token ids (special head, template prefix, template suffix, special tail) around a text's ids."""
        prefix, suffix = self.template.split("[X]")
        suffix = suffix.replace("[MASK]", tokenizer.mask_token)
        prefix = prefix.replace("[MASK]", tokenizer.mask_token)
        empty = tokenizer("", add_special_tokens=True)["input_ids"]  # e.g. [CLS] [SEP]
        head, tail = empty[:1], empty[1:]
        pre = tokenizer(prefix.rstrip(), add_special_tokens=False)["input_ids"]
        suf = tokenizer(suffix.lstrip(), add_special_tokens=False)["input_ids"]
        return head, pre, suf, tail

    def wrap_ids(self, tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
        """Each text's ids inside the template, the TEXT truncated so the template (and its [MASK]) always fits."""
        if tokenizer.mask_token is None:
            raise ConfigError("mask pooling: the tokenizer has no mask token")
        head, pre, suf, tail = self.template_parts(tokenizer)
        budget = max_length - len(head) - len(pre) - len(suf) - len(tail)
        if budget < 1:
            raise ConfigError(f"max_length {max_length} leaves no room for the text inside the template {self.template!r}")
        body = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=budget)["input_ids"]
        return [head + pre + ids + suf + tail for ids in body]

    # ------------------------------------------------------------------ its own settings
    def config(self) -> dict:
        return {"pooling": self.mode, **({"template": self.template} if self.template else {})}

    @classmethod
    def from_config(cls, config: dict) -> "Pooling":
        return cls(config.get("pooling", "mean"), config.get("template"))

    def save(self, folder, hidden: int) -> bool:
        """Write sentence-transformers' ``1_Pooling/config.json`` where a mode of theirs reproduces this pooling.

        Returns whether it could (``first_last_avg`` and ``mask`` have no sentence-transformers equivalent)."""
        mode = self.sentence_transformers_mode
        if mode is None:
            return False
        path = Path(folder) / "1_Pooling" / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "word_embedding_dimension": hidden, "pooling_mode_cls_token": mode == "cls",
            "pooling_mode_mean_tokens": mode == "mean", "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": mode == "weightedmean",
            "pooling_mode_lasttoken": mode == "lasttoken"}, indent=2) + "\n")
        return True
