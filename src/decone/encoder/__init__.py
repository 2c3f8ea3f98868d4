"""The encoder: a Hugging Face transformer, ONE padding-aware pooling, optional dense layers, optional normalisation.

Training, encoding, evaluation, diagnostics and the CLI all go through :class:`Pooling` and :meth:`Encoder.forward`,
so a sentence is embedded the same way everywhere. A saved encoder is a self-describing folder that loads with
``decone``, ``transformers.AutoModel`` and (for every pooling but ``first_last_avg`` and ``mask``)
``sentence_transformers.SentenceTransformer``.
"""

from decone.encoder.batching import Progress, Tokenized, cpu_workers, run_batches
from decone.encoder.device import default_device, has_bf16_cpu, resolve_bf16
from decone.encoder.encoder import Encoder
from decone.encoder.pooling import ACTIVATIONS, POOLINGS, Dense, MLPHead, Pooling, masked_mean, pool

__all__ = ["Encoder", "Pooling", "POOLINGS", "ACTIVATIONS", "Dense", "MLPHead", "pool", "masked_mean", "Tokenized",
           "cpu_workers", "run_batches", "Progress", "default_device", "has_bf16_cpu", "resolve_bf16"]
