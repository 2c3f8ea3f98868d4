"""Word similarity: Spearman x 100 between the cosine of two words' embeddings and human scores.

Each word is encoded alone, as a one-word "sentence", with the model's own pooling (so the vector comes out of the
same path as a sentence's). Words are lower-cased, as the eval-word-vectors scripts do. Subword models have no
out-of-vocabulary words, so every pair is scored; ``coverage`` is the share of pairs whose two words do not tokenise
to nothing but the unknown token (100% for WordPiece/BPE vocabularies), reported for comparison with static vectors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from decone.errors import DataError
from decone.evaluate import core
from decone.evaluate.data import check_scored, locate, numbered, parse_score, resolve_names

WordPair = tuple[str, str, float]

# display name -> file under <data>/wordsim
WORD_SETS: dict[str, str] = {
    "SimLex-999": "EN-SIMLEX-999.txt",
    "WS-353-ALL": "EN-WS-353-ALL.txt",
    "WS-353-SIM": "EN-WS-353-SIM.txt",
    "WS-353-REL": "EN-WS-353-REL.txt",
    "MEN-3k": "EN-MEN-TR-3k.txt",
    "RW": "EN-RW-STANFORD.txt",
    "SimVerb-3500": "EN-SimVerb-3500.txt",
    "MC-30": "EN-MC-30.txt",
    "RG-65": "EN-RG-65.txt",
    "YP-130": "EN-YP-130.txt",
    "MTurk-287": "EN-MTurk-287.txt",
    "MTurk-771": "EN-MTurk-771.txt",
    "VERB-143": "EN-VERB-143.txt",
}
SHORT = {"SimLex-999": "SL999", "WS-353-ALL": "WS353", "WS-353-SIM": "WS-S", "WS-353-REL": "WS-R", "MEN-3k": "MEN",
         "RW": "RW", "SimVerb-3500": "SV3500", "MC-30": "MC30", "RG-65": "RG65", "YP-130": "YP130",
         "MTurk-287": "MT287", "MTurk-771": "MT771", "VERB-143": "VB143"}


def read_word_pairs(path: str | os.PathLike) -> list[WordPair]:
    """``word1 word2 score`` a line (whitespace-separated; blank lines and ``#`` comments skipped)."""
    pairs: list[WordPair] = []
    for lineno, line in numbered(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 3:
            raise DataError(f"{path}:{lineno}: expected 'word1 word2 score', found {len(fields)} field(s)")
        score = parse_score(fields[2], path, lineno)
        pairs.append((fields[0].lower(), fields[1].lower(), score))
    check_scored(pairs, path, "word pairs")
    return pairs


def resolve_sets(sets: Sequence[str] | None) -> tuple[str, ...]:
    lookup = {k.lower(): k for k in WORD_SETS} | {v.lower(): k for k, v in SHORT.items()}
    return resolve_names(sets, tuple(WORD_SETS), lookup, "word-similarity set", WORD_SETS)


def load_words(data_dir: str | os.PathLike | None = None, sets: Sequence[str] | None = None) -> dict[str, list[WordPair]]:
    """{set name: [(w1, w2, score)]} from ``<data>/wordsim``."""
    sets = resolve_sets(sets)
    root = locate("Word-similarity", data_dir, [f"wordsim/{WORD_SETS[s]}" for s in sets])
    return {s: read_word_pairs(Path(root) / "wordsim" / WORD_SETS[s]) for s in sets}


def _covered(encoder, words: list[str]) -> dict[str, bool]:
    """Whether each word tokenises to something other than the unknown token (True where it cannot be checked)."""
    tok = getattr(encoder, "tokenizer", None)
    unk = getattr(tok, "unk_token_id", None)
    if tok is None or unk is None:
        return {w: True for w in words}
    ids = tok(words, add_special_tokens=False)["input_ids"]
    return {w: bool(i) and any(t != unk for t in i) for w, i in zip(words, ids)}


def evaluate_words(
    encoder,
    data_dir: str | os.PathLike | None = None,
    sets: Sequence[str] | None = None,
    batch_size: int = 256,
    bf16: bool | None = False,
    data: dict[str, list[WordPair]] | None = None,
) -> dict:
    """Evaluate on the word-similarity sets; each distinct word is encoded once across all sets.

    Returns ``{"sets": {name: {"n", "spearman", "pearson", "coverage"}}, "avg": mean Spearman over sets,
    "words": distinct words, "encode_seconds", "seconds"}``.
    """
    with core.Timer() as total:
        data = data if data is not None else load_words(data_dir, sets)
        words = list(dict.fromkeys(w for pairs in data.values() for p in pairs for w in p[:2]))
        with core.Timer() as enc_t:
            lookup = core.encode_unique(encoder, words, batch_size=batch_size, bf16=bf16)
        covered = _covered(encoder, words)
        results = {}
        for name, pairs in data.items():
            cos = core.pair_cosines(lookup, pairs)
            gold = [p[2] for p in pairs]
            cov = sum(covered[a] and covered[b] for a, b, _ in pairs) / max(len(pairs), 1)
            results[name] = {"n": len(pairs), "spearman": core.spearman100(cos, gold),
                             "pearson": core.pearson100(cos, gold), "coverage": 100.0 * cov, "short": SHORT.get(name, name)}
    return {
        "sets": results,
        "avg": core.mean(r["spearman"] for r in results.values()),
        "coverage": core.mean(r["coverage"] for r in results.values()),
        "words": len(words),
        "encode_seconds": enc_t.seconds,
        "seconds": total.seconds,
    }
