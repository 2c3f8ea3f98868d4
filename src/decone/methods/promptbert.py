"""PromptBERT: a prompt template around each sentence, the [MASK] state as its embedding, two different templates
as the positive pair, and template denoising (Jiang, Zhang, Huang, Lu, Wei, Zhang, Deng, Sun, Zhuang and Zhang
2022, EMNLP, arXiv:2201.04337).

Defaults from the authors' unsupervised BERT recipe (kongds/Prompt-BERT ``run.sh unsup-bert``): the templates
``This sentence of "[X]" means [MASK] .`` (trained as the anchor; the embedding the saved model keeps) and
``This sentence : "[X]" means [MASK] .`` (the positive view), temperature 0.05, lr 1e-5, batch 256, a training-only
MLP head after the denoising (``--mlp_only_train``). Their sentences are cut to 32 tokens before the template is
added; decone's ``max_length`` counts the template too, so the default 40 leaves a BERT tokenizer the same 30 tokens
of text inside this 10-token template. (For RoBERTa the authors use ``This sentence : '[X]' means [MASK] .`` and
``The sentence : '[X]' means [MASK] .``: pass them with ``--template`` and ``--set positive_template=...``.)

Template denoising: the template alone, with the position ids it has around the sentence (its suffix placed after
the sentence's length), gives the template's own [MASK] state; each view's embedding is its [MASK] state minus that
bias, so the contrast is between what the sentences add. The saved folder keeps the first template and ``mask``
pooling (no denoising at inference) in ``decone.json``: ``decone encode`` and :class:`decone.Encoder` reproduce the
embeddings; sentence-transformers has no template-and-[MASK] pooling, so no ``modules.json`` is written and the save
says so (as for ``first_last_avg``).

Several processes: plain InfoNCE on the two views (local anchors, gathered candidates). GradCache is refused: each
view needs the template-only pass of its own rows, which the cached replay does not make.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from decone import augment
from decone.encoder import Pooling
from decone.errors import ConfigError
from decone.methods import Method, register
from decone.objectives import Objective, check_temperature, info_nce

TEMPLATE = 'This sentence of "[X]" means [MASK] .'
POSITIVE_TEMPLATE = 'This sentence : "[X]" means [MASK] .'


@dataclass
class PromptBERTOptions:
    positive_template: str = POSITIVE_TEMPLATE  # the second view's template ([X]: the sentence)
    denoise: bool = True  # subtract each template's own [MASK] state


class PromptContrast(Objective):
    """InfoNCE between the (denoised) [MASK] states of the same sentences under two templates."""

    supports_offset = True
    gradcache_refusal = "PromptBERT's template denoising needs a template-only pass per view, which GradCache does not replay"

    def __init__(self, temperature: float, positive_template: str, denoise: bool = True):
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.positive = Pooling("mask", positive_template)
        self.denoise = denoise

    def setup(self, model, data) -> None:
        if model.encoder.pooling_module.template is None:
            raise ConfigError("promptbert needs --pooling mask with a --template")

    def embed(self, model, pooling: Pooling, texts: list[str], use_bf16: bool) -> Tensor:
        """texts (B,) -> (B, H): the [MASK] state under ``pooling``'s template, minus the template-only state."""
        enc = model.encoder
        ids = pooling.wrap_ids(enc.tokenizer, texts, model.max_length or enc.max_length)
        feats = {k: v.to(enc.device) for k, v in enc.collate(ids).items()}
        with torch.autocast(device_type=enc.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            out = enc.model(**feats, return_dict=True)
            z = pooling((out.last_hidden_state,), feats["attention_mask"], None, feats["input_ids"],
                        enc.tokenizer.mask_token_id)  # (B, H)
            if self.denoise:
                z = z - self.template_state(model, pooling, [len(x) for x in ids])
            if model.head is not None:
                z = model.head(z)
        return z.float()

    def template_state(self, model, pooling: Pooling, lengths: list[int]) -> Tensor:
        """(B, H): the template alone, its suffix at the positions it has after each row's sentence."""
        enc = model.encoder
        head, pre, suf, tail = pooling.template_parts(enc.tokenizer)
        ids = torch.tensor([head + pre + suf + tail] * len(lengths), device=enc.device)  # (B, T)
        start = len(head) + len(pre)
        offset = (enc.model.config.pad_token_id + 1) if enc.model.config.model_type in ("roberta", "xlm-roberta", "camembert") else 0
        text_lengths = torch.tensor(lengths, device=enc.device) - (len(head) + len(pre) + len(suf) + len(tail))
        positions = torch.arange(ids.shape[1], device=enc.device).expand_as(ids).clone()
        positions[:, start:] += text_lengths[:, None]  # (B, T): the suffix after the sentence
        out = enc.model(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=positions + offset, return_dict=True)
        mask_at = (ids == enc.tokenizer.mask_token_id).int().argmax(dim=1)  # (B,)
        return out.last_hidden_state[torch.arange(len(lengths), device=enc.device), mask_at]

    def loss(self, model, views: list[list[str]], labels: Tensor | None, use_bf16: bool) -> Tensor:
        texts = views[0]
        z1 = self.embed(model, model.encoder.pooling_module, texts, use_bf16)  # (B, H) the saved template
        z2 = self.embed(model, self.positive, texts, use_bf16)  # (B, H) the positive template
        return model.loss_from_views([z1, z2], labels)

    def loss_from_embeddings(self, views: list[Tensor], labels: Tensor | None = None, offset: int = 0) -> Tensor:
        """InfoNCE of the saved template's embeddings ``views[0]`` (N, H) against the positive template's
        ``views[1]`` (M, H) (M > N where candidates were gathered from several processes); scalar."""
        return info_nce(views[0], views[1], self.temperature, offset=offset)


register(Method(
    name="promptbert",
    summary="PromptBERT: [MASK] state of a prompt template; two templates as positives; template denoising.",
    citation="Jiang, Zhang, Huang, Lu, Wei, Zhang, Deng, Sun, Zhuang and Zhang 2022, PromptBERT: Improving BERT "
             "Sentence Embeddings with Prompts (EMNLP), arXiv:2201.04337",
    data="sentences",
    views=lambda config, tokenizer: augment.dropout_views(1),
    objective=lambda config: PromptContrast(config.temperature, config.method_options.positive_template,
                                            config.method_options.denoise),
    defaults=dict(pooling="mask", template=TEMPLATE, head="mlp-train", temperature=0.05, lr=1e-5, batch_size=256,
                  max_length=40, epochs=1),
    options=PromptBERTOptions,
    revision=2,  # 2: the authors' template order, their training-only MLP head, 30 tokens of text
))
