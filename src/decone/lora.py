"""LoRA adapters through peft (Hu et al. 2021, arXiv:2106.09685), as LLM2Vec trains decoders (r 16, alpha 32).

peft is an optional dependency (``pip install peft``; tested with peft 0.21.2). The pieces:

* :func:`default_lora_targets`: the modules to adapt per family (LLM2Vec's all-linear set for Llama-like decoders,
  GPT-2's fused attention and MLP projections, BERT's attention and MLP linears).
* :func:`apply_lora`: wrap a transformers model in a ``peft.PeftModel``; only the LoRA matrices require grad.
* :func:`merge_lora`: fold the adapters into the weights and drop them (end of training): a plain model again.
* :func:`merged_state_dict` / :func:`save_merged`: the merged weights WITHOUT touching the training model (for the
  model folders a run writes while it goes on); the folder loads with ``AutoModel.from_pretrained``.
* :func:`save_adapter` / :func:`load_adapter`: the adapter alone (peft's folder: ``adapter_config.json`` and
  ``adapter_model.safetensors``, a few MB), to be put back on the same base model.
* :func:`save_pretrained`: what an encoder folder should call instead of ``model.save_pretrained``: merged weights
  for a LoRA model, and a causal ``config.json`` for a model in bidirectional mode (see
  :func:`decone.decoders.causal_config_for_saving`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from decone.decoders import causal_config_for_saving
from decone.errors import ConfigError

#: Targets per model type. Llama-like: every linear of attention and MLP (LLM2Vec's ``initialize_peft``).
LLAMA_LIKE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    **{t: LLAMA_LIKE for t in ("llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3",
                               "gemma3_text", "phi3")},
    "gpt2": ("c_attn", "c_proj", "c_fc"),  # Conv1D: fused q/k/v, the attention and MLP output projections, MLP in
    "bert": ("query", "key", "value", "dense"),
    "roberta": ("query", "key", "value", "dense"),
}
#: Module types whose weight is stored (in, out) rather than (out, in): peft must know (``fan_in_fan_out``).
_FAN_IN_FAN_OUT = ("gpt2",)


def _peft():
    try:
        import peft
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("LoRA needs peft: pip install peft") from None
    return peft


@contextlib.contextmanager
def _quiet():
    """peft 0.21 reads a transformers 5 property that warns (FutureWarning) on every wrap, load and merge."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def check_settings(r: int | None, alpha: float | None, dropout: float, flag=lambda name: f"--set {name}") -> None:
    """LoRA's rank, alpha and dropout in range (one-line ConfigError naming the flag ``flag(name)``)."""
    if r is not None and r < 0:
        raise ConfigError(f"{flag('lora_r')} must be >= 0 (0: no LoRA), got {r}")
    if alpha is not None and not alpha > 0:
        raise ConfigError(f"{flag('lora_alpha')} must be > 0, got {alpha}")
    if not 0 <= dropout < 1:
        raise ConfigError(f"{flag('lora_dropout')} must be in [0, 1), got {dropout}")


@dataclass
class LoRAOptions:
    """The LoRA settings of a method that trains through adapters (``--set lora_r=8`` ...), LLM2Vec's values as
    defaults: a method's own options dataclass inherits them, so every such method spells them alike."""

    lora_r: int = 16  #: LoRA rank; 0 trains every weight
    lora_alpha: float = 32.0
    lora_dropout: float = 0.05
    lora_targets: str = ""  #: comma-separated module names; "" = the family's default (decone.lora)

    def validate(self) -> None:
        check_settings(self.lora_r, self.lora_alpha, self.lora_dropout)

    def attach_to(self, encoder) -> str | None:
        """:func:`attach` with these settings: LoRA on ``encoder.model``; the note to print, or None."""
        return attach(encoder, self.lora_r, self.lora_alpha, self.lora_targets or None, self.lora_dropout)


def is_lora(model: nn.Module) -> bool:
    """Whether ``model`` is a peft model (adapters attached)."""
    if "peft" not in sys.modules:  # never imported: no peft model exists (and importing it just to check is slow)
        return False
    from peft import PeftModel

    return isinstance(model, PeftModel)


def default_lora_targets(model_or_config) -> list[str]:
    """The module names to adapt for this model's family; ValueError (naming ``--lora-targets``) for others."""
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    if model_type in DEFAULT_TARGETS:
        return list(DEFAULT_TARGETS[model_type])
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as peft_defaults

    if model_type in peft_defaults:
        return list(peft_defaults[model_type])
    raise ValueError(f"no default LoRA target modules for model type {model_type!r}; name them (--lora-targets "
                     "q_proj,v_proj,...: the last part of the linear layers' names)")


def parse_targets(text: str | Sequence[str] | None) -> list[str] | None:
    """``"q_proj, v_proj"`` or a list -> the list; None or empty -> None (the family's default)."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    items = [t.strip() for t in items if t and t.strip()]
    return items or None


def apply_lora(model: nn.Module, r: int = 16, alpha: float = 32, targets: str | Sequence[str] | None = None,
               dropout: float = 0.05):
    """Wrap ``model`` (a transformers model, e.g. the encoder's ``AutoModel``) in LoRA adapters; returns the
    ``peft.PeftModel``. Every original weight is frozen; only the adapters' A and B matrices require grad.

    The wrapper's ``forward`` passes its keyword arguments to the model and ``.config`` reads the model's, so the
    encoder uses it as it used the model. Raises ValueError for r < 1, alpha <= 0, dropout outside [0, 1), or
    target names that match no module of the model.
    """
    peft = _peft()
    if is_lora(model):
        raise ValueError("the model already has LoRA adapters")
    if int(r) < 1:
        raise ValueError(f"LoRA rank must be >= 1, got {r}")
    if not alpha > 0:
        raise ValueError(f"LoRA alpha must be > 0, got {alpha}")
    if not 0 <= dropout < 1:
        raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout}")
    names = parse_targets(targets) or default_lora_targets(model)
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in names if t not in present and not any(n.endswith(t) for n, _ in model.named_modules())]
    if missing:
        raise ValueError(f"LoRA targets {', '.join(missing)} match no module of this {model.config.model_type} model")
    config = peft.LoraConfig(r=int(r), lora_alpha=alpha, lora_dropout=dropout, target_modules=names, bias="none",
                             fan_in_fan_out=model.config.model_type in _FAN_IN_FAN_OUT)
    was_training = model.training
    with _quiet():
        wrapped = peft.get_peft_model(model, config)
    return wrapped.train(was_training)  # new adapter modules (their dropout) start in training mode: keep the model's


def attach(encoder, r: int = 16, alpha: float = 32, targets: str | Sequence[str] | None = None,
           dropout: float = 0.05) -> str | None:
    """Put LoRA on ``encoder.model`` (replacing it by the ``PeftModel``) unless it already has adapters or ``r`` is 0.

    The one call for a trainer or an objective's ``setup``, before the optimizer is built. Returns the one-line
    note to print (how many parameters train), or None if nothing was done.
    """
    if r <= 0 or is_lora(encoder.model):
        return None
    encoder.model = apply_lora(encoder.model, r=r, alpha=alpha, targets=targets, dropout=dropout)
    n, total = trainable_parameters(encoder.model)
    return f"LoRA r={r} alpha={alpha:g}: {n:,} of {total:,} parameters train ({100 * n / total:.2f}%)"


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold the adapters into the weights and return the plain transformers model (the end of training).

    Destructive: the adapters are gone and the returned model's weights are W + (alpha / r) B A. A model without
    adapters is returned unchanged.
    """
    if not is_lora(model):
        return model
    with _quiet():
        return model.merge_and_unload()


def _lora_layers(model: nn.Module):
    from peft.tuners.lora import LoraLayer

    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoraLayer)]


@torch.no_grad()
def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict :func:`merge_lora` would give, with the model left as it is (adapters kept, training goes on).

    Keys are the plain model's (``...q_proj.weight``, not ``...q_proj.base_layer.weight``; no ``lora_`` keys).
    """
    if not is_lora(model):
        return dict(model.state_dict())
    base = model.get_base_model()
    state = dict(base.state_dict())
    for name, layer in _lora_layers(base):
        key = f"{name}.base_layer.weight"
        for adapter in layer.active_adapters:
            if adapter in layer.lora_A:
                state[key] = state[key] + layer.get_delta_weight(adapter).to(state[key].dtype)
    out = {}
    for key, value in state.items():
        if ".lora_" in key:
            continue
        out[key.replace(".base_layer.", ".")] = value
    return out


def save_merged(model: nn.Module, folder: str | Path, **kwargs) -> None:
    """Write the merged model (weights with the adapters folded in) as a plain transformers folder."""
    folder = Path(folder)
    if not is_lora(model):
        model.save_pretrained(folder, **kwargs)
        return
    base = model.get_base_model()
    state = {k: v.detach().contiguous() for k, v in merged_state_dict(model).items()}
    base.save_pretrained(folder, state_dict=state, **kwargs)


def save_adapter(model: nn.Module, folder: str | Path) -> None:
    """Write the adapter alone (peft's ``adapter_config.json`` and ``adapter_model.safetensors``)."""
    if not is_lora(model):
        raise ValueError("the model has no LoRA adapters to save")
    with _quiet():
        model.save_pretrained(str(folder))


def load_adapter(base_model: nn.Module, folder: str | Path, trainable: bool = False):
    """Put an adapter saved by :func:`save_adapter` back on its base model; returns the ``peft.PeftModel``."""
    peft = _peft()
    with _quiet():
        return peft.PeftModel.from_pretrained(base_model, str(folder), is_trainable=trainable)


def save_pretrained(model: nn.Module, folder: str | Path, **kwargs) -> None:
    """Save a model folder that plain transformers loads and runs as decone trained it (less the attention switch):
    adapters merged in, ``config.json`` without a bidirectional flag (decone records that in ``decone.json``)."""
    with causal_config_for_saving(model):
        save_merged(model, folder, **kwargs)


SAVE_MODES = ("merged", "adapter")


def base_reference(model: nn.Module) -> str:
    """Where an adapter's base model lives: the absolute path of a local folder, else its hub name."""
    name = str(getattr(model.get_base_model().config, "_name_or_path", "") or "")
    return os.path.abspath(name) if name and Path(name).exists() else name


def check_adapter_save(model: nn.Module) -> str:
    """The base an adapter of ``model`` would point at; ConfigError where ``--lora-save adapter`` cannot work: no
    adapters, a model that was itself loaded from an adapter folder (merged: a new adapter would lose the first), or
    a base of unknown location."""
    if not is_lora(model):
        raise ConfigError("--lora-save adapter: this run trains no LoRA adapters (give --lora-r)")
    merged = getattr(model.get_base_model(), "decone_merged_adapter", None)
    if merged:
        raise ConfigError(f"--lora-save adapter: the model was loaded from the adapter folder {merged} (merged into "
                          "its base); a new adapter would point at that base and lose it: use --lora-save merged")
    base = base_reference(model)
    if not base:
        raise ConfigError("--lora-save adapter: the base model's location is unknown (it was not loaded from a "
                          "folder or the hub); use --lora-save merged")
    return base


def save_adapter_folder(model: nn.Module, folder: str | Path) -> None:
    """The adapter plus what points at its base, instead of merged weights: peft's ``adapter_config.json`` and
    ``adapter_model.safetensors`` (a few MB). ``adapter_config.json`` names the base by absolute path (or hub
    name), so transformers' and sentence-transformers' peft integrations and
    :func:`decone.encoder.folder.load_parts` load the base and put the adapter on it."""
    folder = Path(folder)
    base = check_adapter_save(model)
    save_adapter(model, folder)  # no config.json: with one, transformers would load the folder as a full model
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = base
    path.write_text(json.dumps(config, indent=2) + "\n")


def is_adapter_folder(folder: str | Path) -> bool:
    """A folder written by :func:`save_adapter_folder`: peft's adapter files and no model weights of its own."""
    folder = Path(folder)
    return (folder / "adapter_config.json").is_file() and not any(folder.glob("model*.safetensors"))
