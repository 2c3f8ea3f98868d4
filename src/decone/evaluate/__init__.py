"""Evaluation: STS (SentEval protocol, all/mean/wmean), word similarity and SentEval transfer tasks.

Every evaluator takes any object with ``.encode(list[str], batch_size=...) -> np.ndarray`` (a decone ``Encoder``, a
``SentenceTransformer``, ...) and encodes each distinct text once::

    from decone.evaluate import evaluate_sts, evaluate_words, evaluate_transfer
    res = evaluate_sts(encoder, data_dir)          # res["tasks"]["STSBenchmark"]["spearman"]["all"], res["avg"]["all"]

    from decone.evaluate.sts import read_sts_benchmark, spearman_on_pairs   # dev evaluation in the trainer
    dev = read_sts_benchmark(path / "sts/STSBenchmark/sts-dev.csv")
    spearman_on_pairs(encoder, dev, batch_size=128)                          # Spearman x 100

    from decone.evaluate.transfer import load_task                           # reusable classification readers
    load_task("TREC", data_dir)   # {"train": [(text, label)], "dev": None, "test": [...], "labels": [...]}

The CLI command is :func:`decone.evaluate.command.register`. The protocol is documented in ``docs/evaluation.md``.
"""

from decone.evaluate.sts import evaluate_sts, load_sts, read_sts_benchmark, spearman_on_pairs
from decone.evaluate.transfer import evaluate_transfer, load_task
from decone.evaluate.words import evaluate_words, load_words

__all__ = [
    "evaluate_sts", "load_sts", "read_sts_benchmark", "spearman_on_pairs",
    "evaluate_words", "load_words",
    "evaluate_transfer", "load_task",
]
