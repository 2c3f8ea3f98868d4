"""ESimCSE: word repetition for the positive view, and a momentum encoder whose queue of past embeddings adds
negatives (Wu, Gao, Zhang, Su, Huang, Zhang and Hu 2022, COLING, arXiv:2109.04380).

Defaults from the paper (BERT-base, unsupervised): duplication rate 0.32, momentum 0.995, queue 2.5 x the batch
(160 for batch 64), temperature 0.05, lr 3e-5, batch 64, max length 32, [CLS] with SimCSE's training-only MLP.

* Views: [sentence, the sentence with ``dup_len ~ U{0 .. max(2, int(dup_rate * n))}`` of its n words repeated in
  place]; the paper repeats subword tokens, we repeat whitespace words, so the text stays text (and the tokenizer of
  any model applies). Dropout makes the first view differ too.
* The momentum encoder is an EMA copy of the encoder and the training head, ``theta_m <- m theta_m + (1 - m) theta``
  after every optimizer step; it runs in eval mode without gradient on the positive view, and its embeddings join the
  FIFO queue after the step (so a batch is never its own queued negative). The authors' code (caskcsg/sentemb)
  queues the momentum encoding of the original sentence through the live MLP instead; we queue the positive view
  through the EMA head, as the paper's description of a momentum encoder reads.
* LoRA (``--lora-r``) is refused: the momentum copy is made before LoRA wraps the encoder.
* Loss: InfoNCE of each anchor against the in-batch positives and the queue.

Several processes: each rank embeds its shard with the (identical) momentum encoder; the queue takes the gathered
global batch, so every rank holds the same queue. GradCache: the momentum pass needs no gradient and the loss is on
embeddings, so the cached path applies unchanged.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from decone.distributed import gather_with_grad
from decone.errors import ConfigError
from decone.methods import Method, register
from decone.objectives import Objective, check_temperature, info_nce


@dataclass
class ESimCSEOptions:
    dup_rate: float = 0.32  # the largest share of a sentence's words that are repeated
    momentum: float = 0.995  # EMA rate of the momentum encoder
    queue_ratio: float = 2.5  # queue size as a multiple of the batch size

    def validate(self) -> None:
        if not 0 <= self.dup_rate <= 1:
            raise ConfigError(f"--set dup_rate must be in [0, 1], got {self.dup_rate}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"--set momentum must be in [0, 1), got {self.momentum}")
        if self.queue_ratio < 0:
            raise ConfigError(f"--set queue_ratio must be >= 0, got {self.queue_ratio}")


def repeat_words(text: str, dup_rate: float, rng: random.Random) -> str:
    """Repeat ``U{0 .. max(2, int(dup_rate * n))}`` distinct words of the text in place (ESimCSE's word repetition)."""
    words = text.split()
    if not words:
        return text
    k = min(len(words), rng.randint(0, max(2, int(dup_rate * len(words)))))
    chosen = set(rng.sample(range(len(words)), k))
    return " ".join(w for i, word in enumerate(words) for w in ([word, word] if i in chosen else [word]))


def repetition_views(dup_rate: float):
    def views(batch: Sequence[tuple[str, ...]], rng: random.Random) -> list[list[str]]:
        texts = [row[0] for row in batch]
        return [list(texts), [repeat_words(t, dup_rate, rng) for t in texts]]

    return views


class MomentumQueueInfoNCE(Objective):
    """InfoNCE against in-batch positives plus a FIFO queue of a momentum encoder's embeddings."""

    lora_refusal = ("its momentum encoder is an averaged copy of every encoder weight, which LoRA's adapters "
                    "do not line up with")
    supports_offset = True

    def __init__(self, temperature: float, momentum: float, queue_size: int):
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.momentum = momentum
        self.queue_size = int(queue_size)
        self.pending: Tensor | None = None  # this step's momentum embeddings (global batch), queued after the step

    def setup(self, model, data) -> None:
        """The momentum copy of the encoder (and head), frozen; the empty queue (filled count and write position)."""
        self.momentum_encoder = copy.deepcopy(model.encoder)
        self.momentum_head = copy.deepcopy(model.head)
        for p in self.momentum_parameters():
            p.requires_grad_(False)
        dim = model.head.linear.out_features if model.head is not None else model.encoder.dim
        self.register_buffer("queue", torch.zeros(self.queue_size, dim))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_position", torch.zeros((), dtype=torch.long))

    def momentum_parameters(self) -> list:
        return [*self.momentum_encoder.parameters(), *(self.momentum_head.parameters() if self.momentum_head else [])]

    @torch.no_grad()
    def prepare(self, model, views: list[list[str]], use_bf16: bool) -> None:
        """Embed the positive view with the momentum encoder (eval mode, no gradient); gather it over processes."""
        self.momentum_encoder.eval()
        feats = {k: v.to(model.encoder.device) for k, v in model.encoder.collate(model.tokenize_ids(views[1])).items()}
        with torch.autocast(device_type=model.encoder.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            z = self.momentum_encoder(feats)["embedding"]
            z = self.momentum_head(z) if self.momentum_head is not None else z
        z = z.float()  # (B_local, d)
        if model.dist is not None:
            z = gather_with_grad(z, model.dist.sizes(z.shape[0]), model.dist.rank)
        self.pending = z.detach()

    def loss_from_embeddings(self, views: list[Tensor], labels: Tensor | None = None, offset: int = 0) -> Tensor:
        """views [anchors (N, d), positives (M, d)]; the queue's filled rows are extra negatives."""
        queued = self.queue[: int(self.queue_filled)] if self.queue_size else None
        return info_nce(views[0], views[1], self.temperature, offset=offset,
                        extra_negatives=queued if queued is not None and len(queued) else None)

    @torch.no_grad()
    def after_step(self, model) -> dict:
        """EMA update of the momentum encoder; the step's momentum embeddings enter the queue (oldest out)."""
        trained = [*model.encoder.parameters(), *(model.head.parameters() if model.head is not None else [])]
        for m_param, param in zip(self.momentum_parameters(), trained):
            m_param.mul_(self.momentum).add_(param.detach(), alpha=1.0 - self.momentum)
        if self.pending is not None and self.queue_size:
            z = self.pending[-self.queue_size:]
            rows = (int(self.queue_position) + torch.arange(len(z), device=z.device)) % self.queue_size
            self.queue[rows] = z
            self.queue_position.fill_((int(self.queue_position) + len(z)) % self.queue_size)
            self.queue_filled.fill_(min(self.queue_size, int(self.queue_filled) + len(z)))
        self.pending = None
        return {"queue": int(self.queue_filled)}


register(Method(
    name="esimcse",
    summary="ESimCSE: word repetition for the positive, momentum-encoder queue of extra negatives (m 0.995, 2.5 x batch).",
    citation="Wu, Gao, Zhang, Su, Huang, Zhang and Hu 2022, ESimCSE: Enhanced Sample Building Method for Contrastive "
             "Learning of Unsupervised Sentence Embedding (COLING), arXiv:2109.04380",
    data="sentences",
    views=lambda config, tokenizer: repetition_views(config.method_options.dup_rate),
    objective=lambda config: MomentumQueueInfoNCE(config.temperature, config.method_options.momentum,
                                                  round(config.method_options.queue_ratio * config.batch_size)),
    defaults=dict(pooling="cls_before_pooler", head="mlp-train", temperature=0.05, lr=3e-5, batch_size=64,
                  max_length=32, epochs=1),
    options=ESimCSEOptions,
))
