"""LLM2Vec's third step: unsupervised SimCSE on a decoder with bidirectional attention (BehnamGhader et al. 2024).

``llm2vec-simcse`` is that step alone; ``llm2vec`` (``methods/llm2vec.py``) chains ``mntp`` and this step as
resumable stages. The decoder (after ``decone train mntp``, whose saved folder has the MNTP adapter merged in)
reads with every token attending to every other, sentences are mean-pooled, and two dropout views of each
sentence are pulled together against in-batch negatives at T = 0.05 (LLM2Vec's ``loss_scale`` 20). LoRA r 16
trains a fresh adapter. Decoders of the Llama family have no dropout but an attention-probability dropout that
defaults to 0, so without it the two views would be identical: LLM2Vec sets it to 0.3 (``simcse_dropout``), and so does this method. LLM2Vec's values: learning
rate 3e-5, batch 128, 1000 steps, 128 tokens, on Wiki1M (SimCSE's 10^6 Wikipedia sentences).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from decone import augment
from decone.lora import LoRAOptions
from decone.decoders import enable_bidirectional, ensure_pad_token, is_decoder_config, set_attention_dropout
from decone.errors import ConfigError
from decone.methods import Method, register
from decone.objectives import InfoNCE


@dataclass
class LLM2VecOptions(LoRAOptions):
    """The decoder-side settings of LLM2Vec's SimCSE step (``--set NAME=VALUE``); LoRA's from :class:`LoRAOptions`."""

    attention_dropout: float = 0.3  #: LLM2Vec's simcse_dropout: the only dropout a Llama-family decoder has
    bidirectional: bool = True

    def validate(self) -> None:
        if not 0 <= self.attention_dropout < 1:
            raise ConfigError(f"--set attention_dropout must be in [0, 1), got {self.attention_dropout}")
        super().validate()


class DecoderInfoNCE(InfoNCE):
    """InfoNCE whose ``setup`` readies a decoder: eos padding, attention dropout, LoRA, bidirectional attention."""

    def __init__(self, temperature: float = 0.05, options: LLM2VecOptions | None = None):
        super().__init__(temperature)
        self.options = options or LLM2VecOptions()

    def setup(self, model, data=None) -> None:
        encoder, opts = model.encoder, self.options
        if not is_decoder_config(encoder.model.config):
            raise ConfigError(f"llm2vec-simcse: {encoder.model.config.model_type!r} is not a decoder (use simcse for encoders)")
        notes = [ensure_pad_token(encoder.tokenizer, encoder.model.config)]
        set_attention_dropout(encoder.model, opts.attention_dropout)
        notes.append(opts.attach_to(encoder))
        if opts.bidirectional:
            enable_bidirectional(encoder.model)
        for note in notes:
            if note:
                print(f"note: {note}", file=sys.stderr)


register(Method(
    name="llm2vec-simcse",
    summary="LLM2Vec's SimCSE step for decoders: bidirectional attention, mean pooling, SimCSE with attention "
            "dropout 0.3 (LoRA r 16); run it on an mntp output, or run llm2vec for both steps.",
    citation="BehnamGhader, Adlakha, Mosbach, Bahdanau, Chapados and Reddy 2024, LLM2Vec: Large Language Models Are "
             "Secretly Powerful Text Encoders (COLM), arXiv:2404.05961",
    data="sentences",
    backbone="decoder",
    views=lambda config, tokenizer: augment.dropout_views(2),
    objective=lambda config: DecoderInfoNCE(config.temperature, config.method_options),
    defaults=dict(pooling="mean", head="none", temperature=0.05, lr=3e-5, batch_size=128, max_steps=1000,
                  max_length=128, epochs=1),
    options=LLM2VecOptions,
))
