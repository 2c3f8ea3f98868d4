"""Rule-based English sentence negation: the soft negatives of SNCSE (Wang et al. 2022, arXiv:2201.05979).

SNCSE negates a sentence with a dependency parse (spaCy): it deletes an existing ``not``, else adds ``not`` after the
first auxiliary verb, else uses do-support on the root verb, else prefixes ``Not``. decone has no parser at hand, so
:func:`negate` follows the same plan with closed word lists:

1. a sentence that is negated already loses its first negation: ``not`` / ``never`` is deleted, a contraction is
   expanded to its positive auxiliary (``isn't`` -> ``is``, ``can't`` / ``cannot`` -> ``can``, ``won't`` -> ``will``,
   ``shan't`` -> ``shall``), and do-support is undone where the verb can be inflected (``doesn't like`` -> ``likes``,
   ``don't know`` -> ``know``, ``didn't go`` -> ``went``; irregular past forms from a table, else the regular rules);
   in an inverted question (``Don't you ...?``) only the ``n't`` goes;
2. otherwise ``not`` goes after the first auxiliary verb: a finite form of *be* (``am is are was were``), a modal
   (``can could will would shall should may might must``; ``can`` -> ``cannot``), *have* before a past participle,
   *do* before a verb, or a pronoun contraction (``it's`` -> ``it's not``, ``I'll`` -> ``I will not``); a
   sentence-initial auxiliary of a question becomes its contraction (``Is it ...?`` -> ``Isn't it ...?``), one
   outside a question is taken for a noun (``Will Smith ...``). *have* and *do* as main verbs get do-support
   (``She has a dog`` -> ``She does not have a dog``);
3. a sentence with none of these is prefixed with ``It is not true that``, and a sentence that starts with that
   prefix loses it again.

The rules are heuristics: they produce a grammatical negation for most declarative sentences and a plausible one for
the rest, which is what a soft negative needs (a sentence whose surface is close to the original and whose meaning is
not). Everything but the edited words keeps its original spelling and spacing.
"""

from __future__ import annotations

import re

__all__ = ["negate", "third_person", "past_tense"]

_TOKEN = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)*|[^\sA-Za-z]+")
_PREFIX = "It is not true that "

BE = {"am", "is", "are", "was", "were"}
MODALS = {"can", "could", "will", "would", "shall", "should", "may", "might", "must"}
HAVE = {"have", "has", "had"}
DO = {"do", "does", "did"}

# sentence-initial auxiliary of a question -> its negative contraction
_CONTRACT = {"is": "isn't", "are": "aren't", "was": "wasn't", "were": "weren't", "am": "aren't", "can": "can't",
             "could": "couldn't", "will": "won't", "would": "wouldn't", "shall": "shan't", "should": "shouldn't",
             "must": "mustn't", "might": "mightn't", "do": "don't", "does": "doesn't", "did": "didn't",
             "have": "haven't", "has": "hasn't", "had": "hadn't"}
# negative contraction -> positive auxiliary (do/does/did are handled by do-support removal)
_UNCONTRACT = {"won't": "will", "shan't": "shall", "can't": "can", "cannot": "can", "ain't": "is"}

_PRONOUN_CONTRACTION = re.compile(
    r"^(i|you|he|she|it|we|they|that|there|here|what|who|where|how)['\u2019](m|re|s|ve|d|ll)$", re.I)

# words after do/does/did that show it is a main verb (an object follows) or an inverted subject (a question)
_SUBJECTS = {"i", "you", "he", "she", "it", "we", "they", "there", "this", "that", "these", "those", "the", "a", "an",
             "my", "your", "his", "her", "its", "our", "their", "someone", "somebody", "everyone", "anyone", "people"}
_OBJECTS = _SUBJECTS | {"me", "him", "us", "them", "something", "anything", "nothing", "everything", "some", "any",
                        "all", "much", "more", "well", "so", "what", "which", "whatever", "no", "one", "two", "three",
                        "homework", "business", "work", "harm", "good", "damage", "justice", "wonders"}
_ADVERBS = {"really", "always", "ever", "even", "just", "actually", "quite", "already", "also", "still", "yet",
            "often", "usually", "sometimes", "never", "recently", "since", "only", "simply", "certainly", "probably",
            "completely", "fully", "entirely", "necessarily", "clearly"}

# base -> (past, past participle) of common irregular verbs
_IRREGULAR = {
    "arise": ("arose", "arisen"), "awake": ("awoke", "awoken"), "be": ("was", "been"), "bear": ("bore", "borne"),
    "beat": ("beat", "beaten"), "become": ("became", "become"), "begin": ("began", "begun"), "bend": ("bent", "bent"),
    "bet": ("bet", "bet"), "bind": ("bound", "bound"), "bite": ("bit", "bitten"), "bleed": ("bled", "bled"),
    "blow": ("blew", "blown"), "break": ("broke", "broken"), "breed": ("bred", "bred"), "bring": ("brought", "brought"),
    "build": ("built", "built"), "burn": ("burnt", "burnt"), "burst": ("burst", "burst"), "buy": ("bought", "bought"),
    "cast": ("cast", "cast"), "catch": ("caught", "caught"), "choose": ("chose", "chosen"), "cling": ("clung", "clung"),
    "come": ("came", "come"), "cost": ("cost", "cost"), "creep": ("crept", "crept"), "cut": ("cut", "cut"),
    "deal": ("dealt", "dealt"), "dig": ("dug", "dug"), "do": ("did", "done"), "draw": ("drew", "drawn"),
    "dream": ("dreamt", "dreamt"), "drink": ("drank", "drunk"), "drive": ("drove", "driven"), "eat": ("ate", "eaten"),
    "fall": ("fell", "fallen"), "feed": ("fed", "fed"), "feel": ("felt", "felt"), "fight": ("fought", "fought"),
    "find": ("found", "found"), "flee": ("fled", "fled"), "fly": ("flew", "flown"), "forbid": ("forbade", "forbidden"),
    "forget": ("forgot", "forgotten"), "forgive": ("forgave", "forgiven"), "freeze": ("froze", "frozen"),
    "get": ("got", "gotten"), "give": ("gave", "given"), "go": ("went", "gone"), "grind": ("ground", "ground"),
    "grow": ("grew", "grown"), "hang": ("hung", "hung"), "have": ("had", "had"), "hear": ("heard", "heard"),
    "hide": ("hid", "hidden"), "hit": ("hit", "hit"), "hold": ("held", "held"), "hurt": ("hurt", "hurt"),
    "keep": ("kept", "kept"), "kneel": ("knelt", "knelt"), "know": ("knew", "known"), "lay": ("laid", "laid"),
    "lead": ("led", "led"), "lean": ("leant", "leant"), "leap": ("leapt", "leapt"), "learn": ("learnt", "learnt"),
    "leave": ("left", "left"), "lend": ("lent", "lent"), "let": ("let", "let"), "lie": ("lay", "lain"),
    "light": ("lit", "lit"), "lose": ("lost", "lost"), "make": ("made", "made"), "mean": ("meant", "meant"),
    "meet": ("met", "met"), "pay": ("paid", "paid"), "put": ("put", "put"), "quit": ("quit", "quit"),
    "read": ("read", "read"), "ride": ("rode", "ridden"), "ring": ("rang", "rung"), "rise": ("rose", "risen"),
    "run": ("ran", "run"), "say": ("said", "said"), "see": ("saw", "seen"), "seek": ("sought", "sought"),
    "sell": ("sold", "sold"), "send": ("sent", "sent"), "set": ("set", "set"), "shake": ("shook", "shaken"),
    "shine": ("shone", "shone"), "shoot": ("shot", "shot"), "show": ("showed", "shown"), "shrink": ("shrank", "shrunk"),
    "shut": ("shut", "shut"), "sing": ("sang", "sung"), "sink": ("sank", "sunk"), "sit": ("sat", "sat"),
    "sleep": ("slept", "slept"), "slide": ("slid", "slid"), "speak": ("spoke", "spoken"), "speed": ("sped", "sped"),
    "spend": ("spent", "spent"), "spin": ("spun", "spun"), "split": ("split", "split"), "spread": ("spread", "spread"),
    "spring": ("sprang", "sprung"), "stand": ("stood", "stood"), "steal": ("stole", "stolen"),
    "stick": ("stuck", "stuck"), "sting": ("stung", "stung"), "strike": ("struck", "struck"),
    "swear": ("swore", "sworn"), "sweep": ("swept", "swept"), "swim": ("swam", "swum"), "swing": ("swung", "swung"),
    "take": ("took", "taken"), "teach": ("taught", "taught"), "tear": ("tore", "torn"), "tell": ("told", "told"),
    "think": ("thought", "thought"), "throw": ("threw", "thrown"), "wake": ("woke", "woken"),
    "wear": ("wore", "worn"), "weep": ("wept", "wept"), "win": ("won", "won"), "wind": ("wound", "wound"),
    "write": ("wrote", "written"),
}
_PREFIXES = ("under", "over", "with", "fore", "mis", "out", "re", "un", "be", "up")
_PARTICIPLES = {pp for _, pp in _IRREGULAR.values()} | {"been", "done", "got"}
_ED_NOUNS = {"bleed", "breed", "creed", "greed", "speed", "steed", "hundred", "indeed", "kindred", "seed", "need",
             "weed", "deed", "feed", "reed", "shred", "sacred", "naked", "wicked", "ragged", "rugged", "wretched"}


# ---------------------------------------------------------------------------------------------------------- inflection
def _irregular(verb: str) -> tuple[str, str] | None:
    if verb in _IRREGULAR:
        return _IRREGULAR[verb]
    for prefix in _PREFIXES:  # understand -> understood, overcome -> overcame, withdraw -> withdrew
        rest = verb[len(prefix):]
        if verb.startswith(prefix) and len(rest) >= 2 and rest in _IRREGULAR and rest not in ("be", "do"):
            past, pp = _IRREGULAR[rest]
            return prefix + past, prefix + pp
    return None


def _vowel_groups(word: str) -> int:
    return len(re.findall(r"[aeiouy]+", word))


def past_tense(verb: str) -> str:
    """The simple past of a base-form verb: ``go`` -> ``went``, ``stop`` -> ``stopped``, ``try`` -> ``tried``."""
    v = verb.lower()
    irregular = _irregular(v)
    if irregular is not None:
        return irregular[0]
    if v.endswith("e"):
        return v + "d"
    if len(v) > 1 and v.endswith("y") and v[-2] not in "aeiou":
        return v[:-1] + "ied"
    if (len(v) >= 3 and v[-1] not in "aeiouwxy" and v[-2] in "aeiou" and v[-3] not in "aeiou"
            and _vowel_groups(v) == 1):
        return v + v[-1] + "ed"  # stop -> stopped, plan -> planned
    return v + "ed"


def third_person(verb: str) -> str:
    """The third person singular present of a base-form verb: ``like`` -> ``likes``, ``go`` -> ``goes``."""
    v = verb.lower()
    special = {"be": "is", "have": "has", "do": "does", "go": "goes"}
    if v in special:
        return special[v]
    if re.search(r"(s|sh|ch|x|z|o)$", v):
        return v + "es"
    if len(v) > 1 and v.endswith("y") and v[-2] not in "aeiou":
        return v[:-1] + "ies"
    return v + "s"


def _is_participle(word: str) -> bool:
    w = word.lower()
    return w in _PARTICIPLES or (len(w) > 4 and w.endswith("ed") and w not in _ED_NOUNS) or _irregular_pp(w)


def _irregular_pp(word: str) -> bool:
    for prefix in _PREFIXES:
        if word.startswith(prefix) and word[len(prefix):] in _PARTICIPLES:
            return True
    return False


# ---------------------------------------------------------------------------------------------------------- editing
class _Sentence:
    """The sentence's tokens with their character spans; edits are applied right to left on the original text."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
        self.edits: list[tuple[int, int, str]] = []

    def word(self, i: int) -> str:
        return self.tokens[i][0] if 0 <= i < len(self.tokens) else ""

    def is_word(self, i: int) -> bool:
        return 0 <= i < len(self.tokens) and self.tokens[i][0][0].isalpha()

    def replace(self, i: int, new: str) -> None:
        _, start, end = self.tokens[i]
        self.edits.append((start, end, new))

    def delete(self, i: int) -> None:
        """Delete token i and the whitespace before it (or after it, at the start of the text)."""
        _, start, end = self.tokens[i]
        while start > 0 and self.text[start - 1].isspace():
            start -= 1
        if start == 0:
            while end < len(self.text) and self.text[end].isspace():
                end += 1
        self.edits.append((start, end, ""))

    def insert_after(self, i: int, new: str) -> None:
        end = self.tokens[i][2]
        self.edits.append((end, end, " " + new))

    def result(self) -> str:
        out = self.text
        for start, end, new in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            out = out[:start] + new + out[end:]
        return out


def _case_like(model: str, word: str) -> str:
    if len(model) > 1 and model.isupper():
        return word.upper()
    if model[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _next_word(s: _Sentence, i: int, skip_adverbs: bool = True) -> int:
    """Index of the first word token after i (skipping adverbs), or -1 at punctuation or the end."""
    j = i + 1
    while s.is_word(j) and skip_adverbs and (s.word(j).lower() in _ADVERBS or s.word(j).lower().endswith("ly")):
        j += 1
    return j if s.is_word(j) else -1


def _is_question(s: _Sentence) -> bool:
    return s.text.rstrip().endswith("?")


# ---------------------------------------------------------------------------------------------------------- rule 1
def _remove_negation(s: _Sentence) -> bool:
    """Delete the first negation; True if there was one."""
    for i, (tok, _, _) in enumerate(s.tokens):
        w = tok.lower().replace("\u2019", "'")
        if w in ("not", "never"):
            prev = s.word(i - 1).lower()
            if w == "not" and prev in DO:
                _undo_do_support(s, i - 1, [i], prev)
            else:
                s.delete(i)
                if i == 0 and s.is_word(1):  # "Not all ..." -> "All ..."
                    s.replace(1, _case_like(tok, s.word(1)))
            return True
        if w in ("don't", "doesn't", "didn't"):
            _undo_do_support(s, i, [], w[:-3])
            return True
        if w in _UNCONTRACT or (w.endswith("n't") and len(w) > 3):
            base = _UNCONTRACT.get(w, w[:-3])
            s.replace(i, _case_like(tok, base))
            return True
    return False


def _undo_do_support(s: _Sentence, aux: int, also_delete: list[int], form: str) -> None:
    """``does not like`` / ``doesn't like`` -> ``likes``; in a question or without a verb only the negation goes."""
    last = max([aux, *also_delete])
    verb = _next_word(s, last)
    inverted = s.word(last + 1).lower() in _SUBJECTS or (aux == 0 and _is_question(s))
    if verb < 0 or inverted or s.word(verb).lower() in _OBJECTS:
        s.replace(aux, _case_like(s.word(aux), form))
        for k in also_delete:
            s.delete(k)
        return
    base = s.word(verb)
    inflected = {"do": base.lower(), "does": third_person(base), "did": past_tense(base)}[form]
    # delete the auxiliary (and "not"), inflect the verb, carry the auxiliary's capital to the sentence's new first word
    for k in [aux, *also_delete]:
        s.delete(k)
    first_after = last + 1
    if aux == 0 and first_after != verb and s.is_word(first_after):  # "Don't really go" -> "Really go"
        s.replace(first_after, _case_like(s.word(aux), s.word(first_after)))
        s.replace(verb, _case_like(base, inflected))
    else:
        s.replace(verb, _case_like(s.word(aux) if aux == 0 else base, inflected))


# ---------------------------------------------------------------------------------------------------------- rule 2
def _insert_negation(s: _Sentence) -> bool:
    """Put ``not`` after the first auxiliary verb (or do-support for main-verb have/do); True if one was found."""
    for i, (tok, _, _) in enumerate(s.tokens):
        w = tok.lower().replace("\u2019", "'")
        if i == 0 and w in _CONTRACT and not _is_question(s):
            continue  # "Will Smith ...", "Can openers ...": a sentence-initial auxiliary outside a question is a noun
        if i == 0 and w in _CONTRACT:  # "Is it raining?" -> "Isn't it raining?"
            s.replace(i, _case_like(tok, _CONTRACT[w]))
            return True
        if w == "can":  # "can" + "not" is written as one word
            s.replace(i, tok + "not")
            return True
        if w in BE or w in MODALS:
            s.insert_after(i, "not")
            return True
        m = _PRONOUN_CONTRACTION.match(w)
        if m:
            if m.group(2).lower() == "ll":  # "I'll go" -> "I will not go"
                s.replace(i, tok[: m.end(1)] + " will not")
            else:  # "it's" -> "it's not", "I'm" -> "I'm not", "they've" -> "they've not"
                s.insert_after(i, "not")
            return True
        if w in HAVE:
            nxt = _next_word(s, i)
            if nxt >= 0 and _is_participle(s.word(nxt)) and s.word(nxt).lower() != "had":
                s.insert_after(i, "not")  # "has been" -> "has not been"
            else:  # main verb: "has a dog" -> "does not have a dog"
                s.replace(i, _case_like(tok, {"have": "do", "has": "does", "had": "did"}[w] + " not have"))
            return True
        if w in DO:
            nxt = i + 1
            if s.is_word(nxt) and s.word(nxt).lower() not in _OBJECTS:
                s.insert_after(i, "not")  # "did see" -> "did not see"
            else:  # main verb: "did my homework" -> "did not do my homework"
                s.replace(i, _case_like(tok, w + " not do"))
            return True
    return False


# ---------------------------------------------------------------------------------------------------------- negate
_LOWER_STARTERS = {
    "the", "a", "an", "this", "that", "these", "those", "my", "your", "his", "her", "its", "our", "their", "some",
    "many", "most", "all", "every", "each", "both", "few", "several", "no", "one", "two", "three", "he", "she", "it",
    "we", "they", "you", "there", "here", "people", "in", "on", "at", "after", "before", "when", "if", "as", "for",
    "with", "from", "by", "during", "today", "yesterday", "tomorrow", "then", "now", "so", "and", "but", "or",
}


def negate(sentence: str) -> str:
    """The sentence with its polarity flipped (see the module docstring for the rules).

    >>> negate("The cat is sleeping.")
    'The cat is not sleeping.'
    >>> negate("He doesn't like apples.")
    'He likes apples.'
    """
    text = sentence
    if not text.strip():
        return sentence
    if text.startswith(_PREFIX):  # rule 3 undone
        rest = text[len(_PREFIX):]
        return rest[:1].upper() + rest[1:]
    s = _Sentence(text)
    if not any(tok[0].isalpha() for tok, _, _ in s.tokens):
        return sentence
    if _remove_negation(s) or _insert_negation(s):
        return s.result()
    lead = len(text) - len(text.lstrip())
    body = text[lead:]
    first = _TOKEN.match(body)
    word = first.group() if first is not None else ""
    if word.lower() in _LOWER_STARTERS and not (len(word) > 1 and word.isupper()):
        body = body[:1].lower() + body[1:]
    return text[:lead] + _PREFIX + body
