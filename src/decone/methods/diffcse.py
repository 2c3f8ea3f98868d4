"""DiffCSE: SimCSE's contrastive loss plus conditional replaced-token detection (RTD), which makes the sentence
embedding aware of (not invariant to) edits of the sentence.

For each of the 2B dropout views x of a batch (two of every sentence):

    z        = projector(encoder(x))                           # the sentence embedding (post-projector)
    x'       = mask 30% of x's tokens (BERT's 80/10/10 scheme)
    x''      = argmax G(x')                                    # G: a frozen masked LM, the generator
    r_t      = [x''_t != x_t]                                  # which tokens the generator changed
    L_RTD    = CE(D(x'' with its [CLS] input replaced by z), r)  # D: a trained BERT-like discriminator
    L        = InfoNCE(z_1, z_2; T) + lambda * L_RTD

The discriminator sees the edited sentence and, at position 0, the sentence embedding of the ORIGINAL sentence in
place of [CLS]'s embedding-layer output; to tell which tokens were replaced it needs what z says about the original,
so the RTD gradient flows back into the encoder through z. The generator is frozen and kept out of the checkpoint
(it is reloaded from its source on resume); the discriminator (a second copy of the starting model, as the official
code's ``aux_bert``), its 2-way head and the projector are trained, live in the objective (so a checkpoint holds
them) and are NOT written to the model folder, which holds the encoder alone.

Defaults and where they come from (Chuang et al. 2022, arXiv:2204.10298, and its code, github.com/voidism/DiffCSE,
``run_diffcse.sh`` / ``train.py`` / ``diffcse/models.py``), for BERT-base:

* T 0.05, batch 64, lr 7e-6, max length 32, 1 epoch, lambda 0.005, mask ratio 0.30: ``run_diffcse.sh`` (for RoBERTa
  the README gives lr 1e-5, mask ratio 0.20);
* [CLS] pooling with a projector in training only (``--pooler_type cls --mlp_only_train --batchnorm``): the projector
  is DiffCSE's ``ProjectionMLP`` (Linear(d, 2d) - BatchNorm - ReLU - Linear(2d, d) - BatchNorm without affine, no
  biases), in the objective; ``--set projector=none`` uses the trainer's ``--head`` instead (e.g. ``mlp-train``);
* the generator sees the masked input and its ARGMAX replaces every position but [CLS] (``g_pred``), in the
  objective's train/eval mode (its dropout is on in training, as in the code); the discriminator's condition is the
  post-projector embedding (``before_mlp`` off).

Differences: the paper's generator for BERT is DistilBERT (``distilbert-base-uncased``); decone's default is the
starting model's own masked-LM head where its folder has one (``--set generator=distilbert-base-uncased`` gives the
paper's); a folder without one is refused with a message naming the setting. The RTD cross-entropy is averaged over
real tokens (the code averages over every position of the padded batch, padding included, which makes its value
depend on how batches are padded).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from decone import augment
from decone.errors import ConfigError
from decone.methods import Method, register
from decone.objectives import Objective, check_temperature, info_nce

PROJECTORS = ("batchnorm", "none")


@dataclass
class DiffCSEOptions:
    """DiffCSE's own settings (``--set NAME=VALUE``); paper values (BERT-base) as defaults."""

    rtd_weight: float = 0.005  # lambda: weight of the replaced-token-detection loss
    mask_ratio: float = 0.3  # share of (non-special) tokens masked for the generator
    generator: str | None = None  # a masked LM (folder or hub name); None: the starting model's own MLM head
    projector: str = "batchnorm"  # DiffCSE's BatchNorm projection MLP in training, or "none" (the trainer's --head)

    def validate(self) -> None:
        if self.rtd_weight < 0:
            raise ConfigError(f"--set rtd_weight must be >= 0, got {self.rtd_weight}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"--set mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.projector not in PROJECTORS:
            raise ConfigError(f"--set projector {self.projector!r} unknown; choose one of {', '.join(PROJECTORS)}")


class ProjectionMLP(nn.Module):
    """DiffCSE's projector: Linear(d, 2d) - BN - ReLU - Linear(2d, d) - BN (no affine), no biases. (N, d) -> (N, d)."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 2 * dim, bias=False), nn.BatchNorm1d(2 * dim), nn.ReLU(),
                                 nn.Linear(2 * dim, dim, bias=False), nn.BatchNorm1d(dim, affine=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def mask_tokens(input_ids: Tensor, attention_mask: Tensor, special_ids: list[int], ratio: float, mask_id: int,
                vocab_size: int) -> Tensor:
    """BERT's masking: each real, non-special token is chosen with probability ``ratio``; of those 80% become
    [MASK], 10% a random token, 10% stay. input_ids, attention_mask (N, L) -> masked ids (N, L)."""
    special = torch.isin(input_ids, torch.as_tensor(special_ids, device=input_ids.device)) | (attention_mask == 0)
    prob = torch.full(input_ids.shape, ratio, device=input_ids.device).masked_fill(special, 0.0)
    chosen = torch.bernoulli(prob).bool()
    to_mask = torch.bernoulli(torch.full(input_ids.shape, 0.8, device=input_ids.device)).bool() & chosen
    to_random = torch.bernoulli(torch.full(input_ids.shape, 0.5, device=input_ids.device)).bool() & chosen & ~to_mask
    out = input_ids.masked_fill(to_mask, mask_id)
    random_ids = torch.randint(vocab_size, input_ids.shape, device=input_ids.device)
    return torch.where(to_random, random_ids, out)


class DiffCSE(Objective):
    """InfoNCE on the two dropout views + lambda * conditional RTD; see the module docstring."""

    gradcache_refusal = ("its replaced-token detection runs a generator and a discriminator on each sentence's "
                         "tokens; it is not a function of the embeddings alone")
    distributed_refusal = ("its discriminator loss and BatchNorm projector have not been verified on several "
                           "processes")

    def __init__(self, temperature: float = 0.05, rtd_weight: float = 0.005, mask_ratio: float = 0.3,
                 generator: str | None = None, projector: str = "batchnorm", allow_pickle: bool = False):
        super().__init__()
        self.allow_pickle = bool(allow_pickle)  # the generator's pickle weights: only where the user allows them
        self.temperature = check_temperature(temperature)
        self.rtd_weight, self.mask_ratio = float(rtd_weight), float(mask_ratio)
        self.generator_name, self.projector_kind = generator, projector
        self.discriminator: nn.Module | None = None
        self.rtd_head: nn.Module | None = None
        self.projector: nn.Module | None = None
        self.__dict__["_generator"] = None  # frozen, outside the module tree: not in the checkpoint (see _apply)
        self._last: dict = {}

    # ----------------------------------------------------------------------------------------------- set-up
    def setup(self, model, data) -> None:
        encoder = getattr(model, "encoder", model)
        hf = encoder.model
        hidden = int(hf.config.hidden_size)
        if encoder.dim != hidden:
            raise ConfigError(f"diffcse: the sentence embedding has {encoder.dim} dimensions but the discriminator's "
                              f"[CLS] input has {hidden} (drop the dense layers)")
        if not isinstance(getattr(hf, "embeddings", None), nn.Module):
            raise ConfigError(f"diffcse: cannot condition a {hf.config.model_type!r} discriminator on the sentence "
                              "embedding (it has no .embeddings module); use a BERT-like model")
        if encoder.tokenizer.mask_token_id is None:
            raise ConfigError("diffcse: the tokenizer has no mask token, and the generator fills in masked tokens; "
                              "use a BERT-like model (or simcse)")
        self.__dict__["_generator"] = load_generator(self.generator_name, encoder, self.allow_pickle)
        discriminator = copy.deepcopy(hf)  # the official aux_bert: a second copy of the starting model, trained
        if getattr(discriminator, "pooler", None) is not None:
            discriminator.pooler = None  # unused: RTD reads the token states
        self.discriminator = discriminator
        self.rtd_head = nn.Linear(hidden, 2)
        self.projector = ProjectionMLP(hidden) if self.projector_kind == "batchnorm" else None
        self.to(encoder.device)

    @property
    def generator(self) -> nn.Module | None:
        return self.__dict__["_generator"]

    def _apply(self, fn, recurse: bool = True):  # .to() / .cuda() / ... also move the frozen generator
        super()._apply(fn, recurse)
        if self.generator is not None:
            self.generator._apply(fn, recurse)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        if self.generator is not None:
            self.generator.train(mode)  # as in the official code, the generator's dropout is on in training
        return self

    # ----------------------------------------------------------------------------------------------- the loss
    def loss_from_embeddings(self, views: list[Tensor], labels: Tensor | None = None, offset: int = 0) -> Tensor:
        """InfoNCE on [z1, z2], the projected embeddings of the two dropout views."""
        return info_nce(views[0], views[1], self.temperature)

    def embed(self, model, texts: list[str], use_bf16: bool) -> Tensor:
        """(N,) texts -> (N, d) sentence embeddings after the trainer's head and the projector, fp32."""
        z = model.embed(texts, use_bf16)
        return self.projector(z) if self.projector is not None else z

    def parts(self, model, views: list[list[str]], use_bf16: bool) -> tuple[Tensor, Tensor]:
        """(InfoNCE, RTD) of a batch of two views."""
        b = len(views[0])
        texts = [t for view in views[:2] for t in view]  # 2B: both views go through RTD, as in the code
        z = self.embed(model, texts, use_bf16)  # (2B, d)
        contrastive = self.loss_from_embeddings([z[:b], z[b:]])
        return contrastive, self.rtd_loss(model, texts, z, use_bf16)

    def loss(self, model, views: list[list[str]], labels: Tensor | None, use_bf16: bool) -> Tensor:
        contrastive, rtd = self.parts(model, views, use_bf16)
        self._last["infonce"], self._last["rtd"] = contrastive.detach(), rtd.detach()
        return contrastive + self.rtd_weight * rtd

    def rtd_loss(self, model, texts: list[str], z: Tensor, use_bf16: bool) -> Tensor:
        """Mask, let the generator fill in, and have the discriminator (conditioned on ``z``, (N, d)) find the
        replaced tokens: mean cross-entropy over the real tokens."""
        if self.discriminator is None:
            raise RuntimeError("DiffCSE.setup(model, data) was not called")
        encoder = model.encoder
        tok = encoder.tokenizer
        device = encoder.device
        ids = tok(list(texts), add_special_tokens=True, truncation=True,
                  max_length=model.max_length or encoder.max_length, return_attention_mask=False,
                  return_token_type_ids=False)["input_ids"]
        feats = {k: v.to(device) for k, v in encoder.collate(ids).items()}
        input_ids, attention = feats["input_ids"], feats["attention_mask"]  # (N, L)
        real = attention.bool()
        vocab = min(len(tok), encoder.model.get_input_embeddings().num_embeddings)
        masked = mask_tokens(input_ids, attention, tok.all_special_ids, self.mask_ratio, tok.mask_token_id, vocab)
        with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            edited = self.generator(input_ids=masked, attention_mask=attention).logits.argmax(-1)  # (N, L)
        edited[:, 0] = input_ids[:, 0]  # [CLS] stays (its input is replaced by z anyway)
        replaced = (edited != input_ids) & real  # (N, L): the RTD labels
        edited = torch.where(real, edited, torch.full_like(edited, tok.pad_token_id))
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            states = self.discriminate(edited, attention, z)  # (N, L, H)
            logits = self.rtd_head(states)
        logits = logits.float()[real]  # (real tokens, 2)
        targets = replaced[real].long()
        with torch.no_grad():
            self._last["rtd_acc"] = (logits.argmax(-1) == targets).float().mean()
            self._last["replaced"] = targets.float().mean()
        return F.cross_entropy(logits, targets)

    def discriminate(self, input_ids: Tensor, attention_mask: Tensor, condition: Tensor) -> Tensor:
        """The discriminator's last hidden states, position 0 of its embedding-layer output replaced by
        ``condition`` (N, H) (DiffCSE's ``cls_input``)."""

        def put_condition(module, args, output):
            return torch.cat([condition[:, None, :].to(output.dtype), output[:, 1:]], dim=1)

        handle = self.discriminator.embeddings.register_forward_hook(put_condition)
        try:
            return self.discriminator(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        finally:
            handle.remove()

    def after_step(self, model) -> dict | None:
        out = {k: round(float(v), 6) for k, v in self._last.items()}
        self._last = {}
        return out or None


def load_generator(name: str | None, encoder, allow_pickle: bool = False) -> nn.Module:
    """The frozen masked LM that edits sentences: ``name``, else the starting model's own MLM head. Its weights are
    read from safetensors only, unless ``allow_pickle`` (``--allow-pickle``; then ``weights_only=True``).

    Raises ConfigError (naming the ``generator`` setting) where it cannot be loaded, has no MLM head, or does not
    share the encoder's vocabulary.
    """
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from decone.encoder.folder import TOKENIZER_FILES, check_weights
    from decone.errors import ModelError

    source = name or getattr(encoder.model, "name_or_path", None) or getattr(encoder, "source", None)
    hint = ("set --set generator=NAME to a masked LM with the same vocabulary (the paper uses "
            "distilbert-base-uncased for BERT)")
    if not source:
        raise ConfigError(f"diffcse: the starting model's folder is unknown, so it cannot be the generator; {hint}")
    local = Path(source).is_dir()
    if local:
        try:
            check_weights(Path(source), allow_pickle)
        except ModelError as exc:
            raise ConfigError(f"diffcse: generator {exc}") from None
    try:
        generator, info = AutoModelForMaskedLM.from_pretrained(source, output_loading_info=True,
                                                               use_safetensors=None if allow_pickle else True)
    except Exception as exc:
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        what = f"--set generator={name}" if name else f"the starting model {source}"
        raise ConfigError(f"diffcse: {what} cannot be loaded as a masked LM ({line}); {hint}") from None
    prefix = generator.base_model_prefix + "."
    head_missing = sorted(k for k in info.get("missing_keys", ()) if not k.startswith(prefix))
    if head_missing:
        what = f"--set generator={name}" if name else f"the starting model {source}"
        raise ConfigError(f"diffcse: {what} has no masked-LM head ({head_missing[0]} missing), so it cannot be the "
                          f"generator; {hint}")
    vocab = generator.get_input_embeddings().num_embeddings
    expected = encoder.model.get_input_embeddings().num_embeddings
    same_vocab = vocab == expected
    has_tokenizer = not local or any((Path(source) / f).exists() for f in TOKENIZER_FILES)
    if same_vocab and name and has_tokenizer:  # transformers 5 builds a near-empty tokenizer from a folder without one
        try:
            same_vocab = AutoTokenizer.from_pretrained(source).get_vocab() == encoder.tokenizer.get_vocab()
        except Exception:  # no tokenizer there: the embedding sizes must do
            pass
    if not same_vocab:
        raise ConfigError(f"diffcse: --set generator={source} has another vocabulary than the encoder "
                          f"({vocab} vs {expected} tokens); the generator's token ids feed the discriminator")
    generator.requires_grad_(False)
    return generator.to(encoder.device)


def _objective(config) -> DiffCSE:
    opts = getattr(config, "method_options", None) or DiffCSEOptions()
    return DiffCSE(config.temperature, opts.rtd_weight, opts.mask_ratio, opts.generator, opts.projector,
                   allow_pickle=bool(getattr(config, "allow_pickle", False)))


register(Method(
    name="diffcse",
    summary="DiffCSE: SimCSE + conditional replaced-token detection (a frozen MLM edits 30% of the tokens; a "
            "discriminator given the sentence embedding finds them).",
    citation="Chuang, Dangovski, Luo, Zhang, Chang, Soljacic, Li, Yih, Kim and Glass 2022, DiffCSE: "
             "Difference-based Contrastive Learning for Sentence Embeddings (NAACL), arXiv:2204.10298",
    data="sentences",
    views=lambda config, tokenizer: augment.dropout_views(2),
    objective=_objective,
    defaults=dict(pooling="cls_before_pooler", head="none", temperature=0.05, lr=7e-6, batch_size=64,
                  max_length=32, epochs=1),
    options=DiffCSEOptions,
))
