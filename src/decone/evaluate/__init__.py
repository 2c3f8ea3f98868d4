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

# Lazy (PEP 562): the CLI imports ``decone.evaluate.command`` at start-up, which must not pull in scipy.
_EXPORTS = {
    "evaluate_sts": "sts", "load_sts": "sts", "read_sts_benchmark": "sts", "spearman_on_pairs": "sts",
    "evaluate_transfer": "transfer", "load_task": "transfer",
    "evaluate_words": "words", "load_words": "words",
}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"decone.evaluate.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'decone.evaluate' has no attribute {name!r}")

__all__ = [
    "evaluate_sts", "load_sts", "read_sts_benchmark", "spearman_on_pairs",
    "evaluate_words", "load_words",
    "evaluate_transfer", "load_task",
]
