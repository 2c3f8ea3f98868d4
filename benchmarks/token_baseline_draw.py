"""The token anisotropy baseline under two draws, both computed exactly: decone's (a pair of word occurrences from
different sentences, uniform over occurrences, so that long sentences weigh more) and Ethayarajh's code's
(``kawine/contextual``: a pair of different sentences uniformly, then one word of each).

    python benchmarks/token_baseline_draw.py                      # raw-mini and all-MiniLM-L6-v2, 500 STS-B sentences
    python benchmarks/token_baseline_draw.py --models path/to/model --sentences 1000

Prints one line a (model, layer): both baselines and their difference, which shifts every ``*_adj`` token metric of
``decone diagnose`` by as much (docs/diagnostics.md, "Token-level metrics").
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def occurrence_uniform(unit: np.ndarray, sentence_ids: np.ndarray) -> float:
    """Mean cosine over every pair of rows from different sentences. unit (n, H) unit rows, sentence_ids (n,)."""
    sums = np.stack([unit[sentence_ids == s].sum(0) for s in np.unique(sentence_ids)])  # (S, H)
    total = sums.sum(0)
    counts = np.bincount(sentence_ids)[np.unique(sentence_ids)]
    cross = len(unit) ** 2 - int((counts.astype(np.int64) ** 2).sum())  # ordered cross-sentence pairs
    return float((total @ total - (sums * sums).sum()) / cross)


def sentence_uniform(unit: np.ndarray, sentence_ids: np.ndarray) -> float:
    """Mean over ordered pairs of different sentences of the mean cosine between their words (the expectation of
    Ethayarajh's draw). unit (n, H) unit rows, sentence_ids (n,)."""
    means = np.stack([unit[sentence_ids == s].mean(0) for s in np.unique(sentence_ids)])  # (S, H)
    total, n_sent = means.sum(0), len(means)
    return float((total @ total - (means * means).sum()) / (n_sent * (n_sent - 1)))


def main(argv=None) -> None:
    from decone.data import read_scored_pairs
    from decone.diagnostics.collect import word_states
    from decone.diagnostics.tokens import is_word, unit_rows
    from decone.encoder import Encoder

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="raw-mini,minilm", help="comma-separated: raw-mini, minilm or folders")
    p.add_argument("--sentences", type=int, default=500, help="STS-B test sentences sampled (seed 0)")
    a = p.parse_args(argv)
    pairs = read_scored_pairs(C.shared() / "data/sts/STSBenchmark/sts-test.csv")
    sentences = random.Random(0).sample(sorted({s for x, y, _ in pairs for s in (x, y)}), a.sentences)
    print(C.machine_line(C.machine()))
    for name in a.models.split(","):
        states = word_states(Encoder.load(C.model_path(name), device="cpu", pooling="mean"), sentences,
                             show_progress=False)
        keep = np.array([is_word(w) for w in states.words])  # the words decone's token metrics keep
        sid = states.sentence_ids[keep]
        for li, layer in enumerate(states.layers):
            unit = unit_rows(np.asarray(states.vectors[li], dtype=np.float64)[keep])
            occ, sen = occurrence_uniform(unit, sid), sentence_uniform(unit, sid)
            print(f"{name} layer {layer}: occurrence-uniform (decone) {occ:.4f}, sentence-uniform (Ethayarajh) "
                  f"{sen:.4f}, difference {occ - sen:+.4f}")


if __name__ == "__main__":
    main()
