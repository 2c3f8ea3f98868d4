"""Token-level (word-level) contextualisation metrics, per layer: pure functions of word vectors, no model needed.

Following Ethayarajh (2019) and Xiao et al. (2023, *On Isotropy, Contextualization and Learning Dynamics of
Contrastive-based Sentence Representation Learning*), for every layer l:

* ``baseline``: average cosine of random pairs of word occurrences from *different* sentences, the layer's anisotropy
  baseline;
* ``self_similarity``: for a word type occurring in at least two sentences, the average cosine between its
  occurrences' vectors in different sentences, averaged over word types. High = the word's representation ignores
  its context;
* ``intra_similarity``: the average cosine between a sentence's word vectors and their mean (the sentence vector),
  averaged over sentences. High = words of one sentence collapse together.

Each is given raw and ``*_adj`` (raw minus the layer's baseline, Ethayarajh's anisotropy adjustment), overall and
split into function words (a closed-class stop-word list, :data:`FUNCTION_WORDS`) and content words. Xiao et al.
call high self-/intra-similarity of *function* words after contrastive training "spurious contextualization".

A "word" is a whole word as the tokenizer's pre-tokenizer splits it (fast tokenizers' ``word_ids``); its vector is
the MEAN of its word pieces' vectors (see :func:`decone.diagnostics.collect.word_states`). Words without a letter or
digit (punctuation) and special tokens are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from decone.diagnostics.metrics import unit_rows

#: Closed-class English words (determiners, pronouns, prepositions, conjunctions, auxiliaries, particles, common
#: adverbs and contraction pieces as BERT's pre-tokenizer splits them: "don't" -> "don", "'", "t"). Built from
#: scikit-learn's ENGLISH_STOP_WORDS without its content words ("fire", "bill", "system", "find", numbers, ...).
FUNCTION_WORDS = frozenset(
    """
    a about above across after afterwards again against all almost alone along already also although always am among
    amongst an and another any anyhow anyone anything anyway anywhere are around as at be became because become becomes
    becoming been before beforehand behind being below beside besides between beyond both but by can cannot could do
    does did doing done down during each either else elsewhere enough even ever every everyone everything everywhere
    except few for former formerly from further had has have having he hence her here hereafter hereby herein hereupon
    hers herself him himself his how however i if in indeed into is it its itself just latter latterly least less many
    may me meanwhile might mine more moreover most mostly much must my myself namely neither never nevertheless no
    nobody none noone nor not nothing now nowhere of off often on once only onto or other others otherwise our ours
    ourselves out over own per perhaps rather same several shall she should since so some somehow someone something
    sometime sometimes somewhere still such than that the their theirs them themselves then thence there thereafter
    thereby therefore therein thereupon these they this those though through throughout thru thus to together too
    toward towards under until up upon us very via was we were what whatever when whence whenever where whereafter
    whereas whereby wherein whereupon wherever whether which while whither who whoever whom whose why will with within
    without would yet you your yours yourself yourselves
    s t d ll m re ve n nt don didn doesn isn wasn aren weren hasn haven hadn wouldn shouldn couldn
    """.split()
)


@dataclass
class WordStates:
    """Per-layer vectors of word occurrences.

    Attributes:
        vectors: (n_layers, n_words, H) float32, one row per word occurrence per layer.
        words: (n_words,) the lower-cased word type of each occurrence.
        sentence_ids: (n_words,) int, the index of the sentence each occurrence comes from.
        layers: the layer index of each of the n_layers slices (0 = the embedding layer).
    """

    vectors: np.ndarray
    words: list[str]
    sentence_ids: np.ndarray
    layers: list[int] = field(default_factory=list)

    def __post_init__(self):
        self.vectors = np.asarray(self.vectors)
        self.sentence_ids = np.asarray(self.sentence_ids, dtype=np.int64)
        if self.vectors.ndim != 3:
            raise ValueError(f"WordStates.vectors: expected (n_layers, n_words, H), got shape {self.vectors.shape}")
        if not (len(self.words) == len(self.sentence_ids) == self.vectors.shape[1]):
            raise ValueError("WordStates: words, sentence_ids and vectors disagree on the number of words")
        if not self.layers:
            self.layers = list(range(self.vectors.shape[0]))


def is_word(text: str) -> bool:
    """A word has at least one letter or digit (punctuation is left out)."""
    return any(ch.isalnum() for ch in text)


def token_baseline(vectors: np.ndarray, sentence_ids: np.ndarray, n_pairs: int = 5000, seed: int = 0) -> float:
    """Average cosine of random pairs of rows from different sentences (Ethayarajh's baseline). vectors (n, H).

    Exact (every cross-sentence pair) where there are at most ``n_pairs`` pairs in all, else ``n_pairs`` pairs drawn
    uniformly (seeded)."""
    n = len(vectors)
    sentence_ids = np.asarray(sentence_ids)
    if n < 2 or len(np.unique(sentence_ids)) < 2:
        return float("nan")
    if n * (n - 1) // 2 <= n_pairs:
        i, j = np.triu_indices(n, k=1)
        keep = sentence_ids[i] != sentence_ids[j]
        i, j = i[keep], j[keep]
    else:
        rng = np.random.default_rng(seed)
        i_all, j_all, need = [], [], n_pairs
        while need > 0:  # rejection-sample pairs across sentences (at least 2 sentences, so this ends)
            i = rng.integers(0, n, size=2 * need)
            j = rng.integers(0, n, size=2 * need)
            keep = sentence_ids[i] != sentence_ids[j]
            i_all.append(i[keep][:need])
            j_all.append(j[keep][:need])
            need -= len(i_all[-1])
        i, j = np.concatenate(i_all), np.concatenate(j_all)
    u = unit_rows(np.asarray(vectors, dtype=np.float64))
    return float(np.einsum("ij,ij->i", u[i], u[j]).mean())


def _type_groups(words: Sequence[str], sentence_ids: np.ndarray, keep: np.ndarray, max_occurrences: int,
                 seed: int) -> dict[str, np.ndarray]:
    """For each word type occurring in >= 2 sentences: up to ``max_occurrences`` occurrence indices (seeded), from
    at least 2 sentences (so that its self-similarity is defined)."""
    groups: dict[str, list[int]] = {}
    for idx in np.flatnonzero(keep):
        groups.setdefault(words[idx], []).append(int(idx))
    rng = np.random.default_rng(seed)
    out = {}
    for word in sorted(groups):
        idx = np.asarray(groups[word])
        if len(np.unique(sentence_ids[idx])) < 2:
            continue
        if len(idx) > max_occurrences:
            pick = np.sort(rng.choice(idx, size=max_occurrences, replace=False))
            if len(np.unique(sentence_ids[pick])) < 2:  # all from one sentence: one swapped for an occurrence elsewhere
                pick[-1] = rng.choice(idx[sentence_ids[idx] != sentence_ids[pick[0]]])
                pick = np.sort(pick)
            idx = pick
        out[word] = idx
    return out


def self_similarity(unit: np.ndarray, groups: dict[str, np.ndarray], sentence_ids: np.ndarray) -> dict[str, float]:
    """Per word type: mean cosine of its occurrences across different sentences. unit: (n, H) unit rows."""
    out = {}
    for word, idx in groups.items():
        v = unit[idx]
        gram = v @ v.T
        sid = sentence_ids[idx]
        mask = sid[:, None] != sid[None, :]  # pairs from different sentences (excludes the diagonal)
        out[word] = float(gram[mask].mean())
    return out


def intra_similarity(unit: np.ndarray, raw: np.ndarray, sentence_ids: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """Mean over sentences of the mean cosine between each word and the sentence's mean vector.

    Returns ``all``, ``function`` and ``content`` (the latter two averaging, per sentence, only words of that class;
    sentences without such words are skipped). ``classes``: True for function words. Sentences with < 2 words are
    skipped.
    """
    sums = {"all": [], "function": [], "content": []}
    order = np.argsort(sentence_ids, kind="stable")
    bounds = np.flatnonzero(np.diff(sentence_ids[order])) + 1
    for idx in np.split(order, bounds):
        if len(idx) < 2:
            continue
        centre = raw[idx].mean(axis=0)
        cn = np.linalg.norm(centre)
        if cn == 0:
            continue
        cos = unit[idx] @ (centre / cn)
        sums["all"].append(cos.mean())
        fn = classes[idx]
        if fn.any():
            sums["function"].append(cos[fn].mean())
        if (~fn).any():
            sums["content"].append(cos[~fn].mean())
    return {k: float(np.mean(v)) if v else float("nan") for k, v in sums.items()}


def without_first_words(states: WordStates) -> WordStates:
    """``states`` less each sentence's first word: for a decoder, the first position is an attention sink (Xiao et
    al. 2023, arXiv:2309.17453) with a huge norm that a causal model cannot contextualise, so its metrics are
    reported with and without it. (A BOS token, where the tokenizer adds one, is special and never counted.)"""
    sid = states.sentence_ids
    first = np.r_[True, sid[1:] != sid[:-1]] if len(sid) else np.zeros(0, dtype=bool)  # occurrences are in order
    keep = np.flatnonzero(~first)
    return WordStates(vectors=states.vectors[:, keep], words=[states.words[i] for i in keep],
                      sentence_ids=sid[keep], layers=list(states.layers))


def token_metrics(
    states: WordStates,
    n_pairs: int = 5000,
    max_occurrences: int = 20,
    seed: int = 0,
    function_words: Iterable[str] = FUNCTION_WORDS,
) -> list[dict]:
    """Ethayarajh's contextualisation metrics for every layer of ``states``.

    Args:
        states: word-occurrence vectors per layer.
        n_pairs: random cross-sentence pairs for the baseline.
        max_occurrences: occurrences per word type used for self-similarity (a seeded random subset).
        seed: seed for all sampling.
        function_words: the words counted as function words (lower case).

    Returns:
        one dict per layer: ``layer``, ``baseline``; ``self_similarity``, ``self_similarity_function``,
        ``self_similarity_content``, ``intra_similarity``, ``intra_similarity_function``,
        ``intra_similarity_content``, each also as ``*_adj`` (minus ``baseline``); and the counts ``n_words``,
        ``n_sentences``, ``n_types_function``, ``n_types_content`` (word types with occurrences in >= 2 sentences).
        Values are NaN where there is nothing to average.
    """
    fw = frozenset(w.lower() for w in function_words)
    words = [w.lower() for w in states.words]
    keep = np.fromiter((is_word(w) for w in words), dtype=bool, count=len(words))
    sid_all = states.sentence_ids
    groups = _type_groups(words, sid_all, keep, max_occurrences, seed)
    fn_types = {w for w in groups if w in fw}
    kept = np.flatnonzero(keep)
    sid = sid_all[kept]
    classes = np.fromiter((words[i] in fw for i in kept), dtype=bool, count=len(kept))
    results = []
    for li, layer in enumerate(states.layers):
        raw_all = np.asarray(states.vectors[li], dtype=np.float64)
        unit_all = unit_rows(raw_all)
        raw, unit = raw_all[kept], unit_all[kept]
        base = token_baseline(raw, sid, n_pairs, seed)
        selfsim = self_similarity(unit_all, groups, sid_all)
        fn_vals = [v for w, v in selfsim.items() if w in fn_types]
        ct_vals = [v for w, v in selfsim.items() if w not in fn_types]
        intra = intra_similarity(unit, raw, sid, classes)
        row = {
            "layer": int(layer),
            "baseline": base,
            "self_similarity": _mean(list(selfsim.values())),
            "self_similarity_function": _mean(fn_vals),
            "self_similarity_content": _mean(ct_vals),
            "intra_similarity": intra["all"],
            "intra_similarity_function": intra["function"],
            "intra_similarity_content": intra["content"],
        }
        for key in [k for k in row if k.startswith(("self_", "intra_"))]:
            row[f"{key}_adj"] = row[key] - base
        row.update(
            n_words=int(len(kept)),
            n_sentences=int(len(np.unique(sid))),
            n_types_function=len(fn_types),
            n_types_content=len(groups) - len(fn_types),
        )
        results.append(row)
    return results


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")
