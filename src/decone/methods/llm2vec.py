"""LLM2Vec (BehnamGhader et al. 2024, arXiv:2404.05961): a decoder turned into an encoder in two trained stages.

Stage 1, ``mntp``: bidirectional attention and masked next-token prediction (LoRA r 16, 1000 steps of batch 32).
Stage 2, ``llm2vec-simcse``: on the merged MNTP model, unsupervised SimCSE with attention dropout 0.3 and mean
pooling (a fresh LoRA r 16, 1000 steps of batch 128). Each stage keeps its own paper defaults; a general flag given
on the command line (``--max-steps``, ``--lr``, ``--lora-r``, ...) applies to both, and ``--set NAME=VALUE`` goes to
the stages that have that setting. The stages run through :mod:`decone.train.stages`: stage 1 writes
``OUTPUT.stages/1-mntp``, the last stage writes ``OUTPUT``, and ``--resume`` continues from where a run stopped.
"""

from decone.methods import Method, register

register(Method(
    name="llm2vec",
    summary="LLM2Vec for decoders: mntp, then llm2vec-simcse on its output, as resumable stages.",
    citation="BehnamGhader, Adlakha, Mosbach, Bahdanau, Chapados and Reddy 2024, LLM2Vec: Large Language Models Are "
             "Secretly Powerful Text Encoders (COLM), arXiv:2404.05961",
    data="sentences",
    backbone="decoder",
    stages=("mntp", "llm2vec-simcse"),
))
