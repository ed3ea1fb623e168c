"""Toxic language and per-app prohibited content.

Toxicity comes from the alt-profanity-check model shipped in its wheel, scored per
sentence (one insult in a long friendly answer is not diluted by the rest) and flagged
on the sentence's span. Prohibited categories are plain term lists per app from config,
matched on word boundaries, case-insensitively.

Most of the work is done on the lower-cased text encoded one byte per character (every
non-ASCII character as '?'), where substring checks and splitting run in C; every such
shortcut only skips work that provably finds nothing, and the answers still come from
the regexes and the model run on the text itself.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import lru_cache
from itertools import chain, compress, product, repeat
from string import ascii_lowercase, digits

from pydantic import BaseModel, ConfigDict, Field

from hitl_prescreen.detectors.base import ScreenContext, make_flag
from hitl_prescreen.detectors.profanity_model import (
    STOP_CODE,
    TOKEN,
    TOKEN_ASCII,
    AsciiView,
    LinearProfanityModel,
    SentenceGate,
    ascii_view,
    load_model,
)
from hitl_shared.events import Flag, LLMOutput, Severity

ALL_APPS = "*"
_SENTENCE = re.compile("[^.!?\n\u3002\uff01\uff1f]+[.!?\u3002\uff01\uff1f]*")  # with CJK stops

# The only non-ASCII characters that re.IGNORECASE matches to an ASCII letter are these
# two, U+0130 and the Kelvin sign (a test checks every code point). The Kelvin sign
# lower-cases to "k", so the encoded lower-cased text shows it, and U+0130 is the only
# character that lower-cases to two (the text's length changes, which is checked). These
# two lower-case to themselves, so they show as '?': with one of them in the text, a
# case-insensitive match need not show in the encoded text.
_FOLDS_TO_ASCII = ("\u017f", "\u0131")


def _exact_only(view: AsciiView) -> bool:
    """Whether the encoded lower-cased text may hide a case-insensitive match: when the
    lower-cased text holds U+0130's combining dot (only U+0130 lower-cases to two
    characters) or one of ``_FOLDS_TO_ASCII``. No other character lower-cases to one of
    those (a test checks every code point), so the text itself tells: never a "plain" one.
    """
    return not view.plain and any(map(view.text.__contains__, ("\u0130", *_FOLDS_TO_ASCII)))


# Insults aimed at the reader that the profanity model misses because they use no
# profanity ("you people are worthless", "now go away"): second person + contempt.
_CONTEMPT = (
    r"useless|worthless|pathetic|clueless|incompetent|stupid|dumb|idiot(?:ic)?|moron(?:ic)?|"
    r"loser|hopeless|brainless|ignorant|lazy|a joke|a waste of (?:time|space)"
)
_TARGETED_INSULT = re.compile(
    rf"\b(?:you(?:'re|\s+are)?|you\s+people\s+are|people\s+like\s+you\s+are|"
    rf"are\s+you)\s+(?:(?:really|just|so|such|this|truly)\s+){{0,2}}"
    rf"(?:an?\s+|the\s+most\s+|a\s+complete\s+|an\s+absolute\s+|completely\s+)?"
    rf"(?:{_CONTEMPT})\b(?!\s+load)"
    rf"|(?:^|(?<=[.!?])\s+|\b(?:now|just|please)\s+)go\s+away\b|\bstop\s+whining\b|\bshut\s+up\b|\buse\s+your\s+brain\b|"
    rf"\bgo\s+bother\s+someone\s+else\b|\bfigure\s+it\s+out\s+yourself\b|"
    rf"\bsomeone\s+this\s+(?:{_CONTEMPT})\b|\bpeople\s+like\s+you\s+are\s+the\s+reason\b",
    re.IGNORECASE | re.MULTILINE,
)
# Every match contains one of these; most texts contain none, so the regex rarely runs.
_INSULT_HINTS = (
    "useless", "worthless", "pathetic", "clueless", "incompetent", "stupid", "dumb", "idiot",
    "moron", "loser", "hopeless", "brainless", "ignorant", "lazy", "a joke", "a waste of",
    "go away", "whining", "shut up", "your brain", "someone else", "yourself", "the reason",
)  # fmt: skip
# How those are looked for (see _has_hint): the one-word hints, and for each of the
# others one of its words; none of these, nor _INSULT_ANCHORS, has a blank.
_WORD_HINTS = tuple(h.encode() for h in _INSULT_HINTS if " " not in h)
_PHRASE_HINTS = tuple(
    (word.encode(), hint.encode())
    for word, hint in (
        ("joke", "a joke"), ("waste", "a waste of"), ("away", "go away"), ("shut", "shut up"),
        ("brain", "your brain"), ("someone", "someone else"), ("reason", "the reason"),
    )
)  # fmt: skip
# Every match contains one of these words, wherever its blanks are (the hints above
# assume single spaces): a contempt word for the first alternative and the "someone
# this" one, and one word of each other alternative.
_INSULT_ANCHORS = tuple(
    word.encode()
    for word in (
        "useless", "worthless", "pathetic", "clueless", "incompetent", "stupid", "dumb",
        "idiot", "moron", "loser", "hopeless", "brain", "ignorant", "lazy", "joke", "waste",
        "away", "whining", "shut", "bother", "figure", "reason",
    )
)  # fmt: skip
# What a word must hold for _has_hint or _insult_matches to care about it. "Odd" words
# (see _word_marks) include all that do, so a core is in some word of the text exactly
# when it is in the odd words joined with blanks (no core has a blank).
_ALL_CORES = {*_WORD_HINTS, *(word for word, _ in _PHRASE_HINTS), *_INSULT_ANCHORS}
# Without those holding another (the same words hold one): fewer to look for.
_CORES = tuple(sorted(c for c in _ALL_CORES if not any(o in c for o in _ALL_CORES - {c})))
_ANY_CORE = re.compile(b"|".join(_CORES))
_ODD = 0x80  # the high bit of a word's mark
_CODE_OF = bytes(m if m == STOP_CODE else m & ~_ODD for m in range(256))  # translate table
_IS_ODD = bytes(_ODD <= m < STOP_CODE for m in range(256))  # translate table, to 0 or 1
# A match holds only letters, apostrophes and white space, so it lies inside one run of
# those: this table blanks (NUL) every other ASCII byte of the encoded text. '?' stays
# (it may be a non-ASCII space or letter), which can only make a run longer.
_INSULT_RUN = bytes(
    c if c < 128 and (chr(c).isalpha() or chr(c).isspace() or chr(c) in "'?") else 0
    for c in range(256)
)


class ToxicityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    threshold: float = Field(default=0.8, ge=0.0, le=1.0)
    critical_at: float = Field(default=0.97, ge=0.0, le=1.0)
    targeted_insults: bool = Field(
        default=True, description="Also flag contempt aimed at the reader, without profanity"
    )
    prohibited: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict,
        description="app (or '*' for every app) -> category -> terms or phrases",
    )


def _term_pattern(terms: dict[str, str]) -> re.Pattern[str] | None:
    if not terms:
        return None
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _category_of(terms: dict[str, str], matched: str) -> str:
    """The category of the term a case-insensitive match stands for. Its lower case is
    usually the term itself, but not always ("KİLL" lower-cases to "ki̇ll")."""
    category = terms.get(matched.lower())
    if category is not None:
        return category
    return next(c for t, c in terms.items() if re.fullmatch(re.escape(t), matched, re.I))


def _term_keys(terms: dict[str, str]) -> frozenset[bytes] | None:
    """One word of each term, its longest run of [a-z0-9_], which a match shows as a word
    of the text (see ``detect``); None when that cannot be relied on (a term with a
    non-ASCII character or a '?', or without such a run)."""
    if any(not t.isascii() or "?" in t for t in terms):
        return None
    keys = [max(re.findall(r"[a-z0-9_]+", t), key=len, default="") for t in terms]
    return frozenset(k.encode() for k in keys) if all(keys) else None


def _sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the sentence holding [start, end), without surrounding blanks."""
    for sentence in _SENTENCE.finditer(text):
        if sentence.start() <= start < sentence.end():
            raw = sentence.group()
            left = sentence.start() + len(raw) - len(raw.lstrip())
            return left, sentence.start() + len(raw.rstrip())
    return start, end


@lru_cache(maxsize=4)
def _word_marks(
    gate: SentenceGate, model: LinearProfanityModel, keys: frozenset[bytes]
) -> dict[bytes, int]:
    """Word -> its gate code (low 7 bits), plus ``_ODD`` if it holds one of ``_CORES`` or
    is one of ``keys`` (of prohibited terms).

    Why one table: ``detect`` looks each word of the text up once, for the gate, the
    insult hints and the prohibited terms. Words not in it count as odd (any word may hold
    a core); listing the common words (the model's vocabulary and stop words, which LLM
    answers are mostly made of, and 1-2 character words) keeps the odd words of a text
    few. Shared by the detectors of a process, never changed.
    """
    short = [*ascii_lowercase, *digits, "_"]
    known = chain(model.idf, model.stop_words, short, map("".join, product(short, repeat=2)))
    marks = dict.fromkeys((w.encode() for w in known if w.isascii()), 0)
    marks.update(gate.codes)
    for word in marks:
        if _ANY_CORE.search(word) or word in keys:
            marks[word] |= _ODD
    return marks


def _has_hint(view: AsciiView, odd: bytes) -> bool:
    """Whether one of ``_INSULT_HINTS`` is in the lower-cased text, from its odd words.

    The same answer as looking for each in ``view.encoded`` (~25 µs on 2 KB): a one-word
    hint is in the text exactly when it is in one of its words, so in an odd one; a phrase
    is only looked for when its chosen word is in an odd word.
    """
    if _ANY_CORE.search(odd) is None:  # one pass over the few odd words, usually enough
        return False
    if any(map(odd.__contains__, _WORD_HINTS)):
        return True
    phrases = [hint for word, hint in _PHRASE_HINTS if word in odd]
    return bool(phrases) and any(map(view.encoded.__contains__, phrases))


def _insult_matches(
    text: str, encoded: bytes, odd: bytes, exact_only: bool
) -> Iterator[re.Match[str]]:
    """``_TARGETED_INSULT.finditer(text)``, running the regex (slow on 2 KB: ~0.4 ms) only
    over the runs of letters, apostrophes and spaces that hold one of its anchor words.

    A match lies inside such a run, and the regex sees the same characters around it when
    searching the run from its start up to and including the character that ends it
    (lookbehinds and ``\b`` see before ``pos``; nothing looks further ahead than that
    character), so the matches are the same, in the same order.
    """
    if exact_only:
        yield from _TARGETED_INSULT.finditer(text)
        return
    runs = encoded.translate(_INSULT_RUN)
    windows = set()
    for anchor in _INSULT_ANCHORS:
        if anchor not in odd:  # then in no word of the text (see _CORES)
            continue
        at = encoded.find(anchor)
        while at != -1:
            start = runs.rfind(b"\0", 0, at) + 1
            end = runs.find(b"\0", at)
            if end == -1:
                windows.add((start, len(text)))
                break
            windows.add((start, end + 1))
            at = encoded.find(anchor, end)
    for start, end in sorted(windows):
        yield from _TARGETED_INSULT.finditer(text, start, end)


class ToxicityDetector:
    """Flags toxic sentences and prohibited terms."""

    name = "toxicity"

    def __init__(
        self, config: ToxicityConfig | None = None, model: LinearProfanityModel | None = None
    ) -> None:
        self.config = config or ToxicityConfig()
        self.model = model or load_model()
        self._terms: dict[str, dict[str, str]] = {
            app: {t.lower(): category for category, terms in by_cat.items() for t in terms}
            for app, by_cat in self.config.prohibited.items()
        }
        self._patterns = {app: _term_pattern(terms) for app, terms in self._terms.items()}
        self._keys = {app: _term_keys(terms) for app, terms in self._terms.items()}
        self._gate = self.model.gate(self.config.threshold)
        keys = frozenset().union(*filter(None, self._keys.values()))
        self._marks = _word_marks(self._gate, self.model, keys)

    def _insults(self, text: str, view: AsciiView, odd: bytes, found: list[Flag]) -> list[Flag]:
        """Sentences with a targeted insult that the model did not already flag."""
        if not _has_hint(view, odd):
            return []
        flags: list[Flag] = []
        covered = [(f.start, f.end) for f in found]
        for m in _insult_matches(text, view.encoded, odd, _exact_only(view)):
            if any(a <= m.start() < b for a, b in covered):
                continue
            start, end = _sentence_around(text, m.start(), m.end())
            covered.append((start, end))
            flags.append(
                make_flag(
                    self.name,
                    "toxicity",
                    "high",
                    0.85,
                    start,
                    end,
                    f"Contempt aimed at the reader ('{m.group()[:40]}')",
                )
            )
        return flags

    def _score(
        self, text: str, view: AsciiView, sentences: Iterable[re.Match[str]], floor: float
    ) -> list[tuple[int, int, float, Counter[str]]]:
        """Score the sentences that pass ``probability_if_reaches`` (tried first: it drops
        ~97% of what ``may_reach`` keeps) and ``may_reach``."""
        scored = []
        lowered = ""  # text.lower(), once a sentence needs it
        for sentence in sentences:
            raw = sentence.group()
            # str.lower() maps each character on its own but capital sigma (its form
            # depends on the letters around it): without one, the sentence lower-cased on
            # its own is its stretch of the lower-cased text (of the same length), which
            # is what the model sees. Lower-casing the whole text is only needed then.
            if "\u03a3" in raw and view.same_length:
                lowered = lowered or view.lower()
                piece = lowered[sentence.start() : sentence.end()]
            else:
                piece = raw.lower()
            # On ASCII text the ASCII-only pattern finds the same tokens, faster.
            tokens = (TOKEN_ASCII if piece.isascii() else TOKEN).findall(piece)
            if not tokens:
                continue
            counts = Counter(tokens)
            probability = self.model.probability_if_reaches(counts, floor)
            if probability is None or (floor > 0 and not self.model.may_reach(counts, floor)):
                continue
            start = sentence.start() + len(raw) - len(raw.lstrip())
            end = sentence.start() + len(raw.rstrip())
            scored.append((start, end, probability, counts))
        return scored

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]:
        text = output.output_text
        view = ascii_view(text)
        marks = bytes(map(self._marks.get, view.words, repeat(_ODD)))  # unknown words are odd
        threshold = self.config.threshold
        if threshold <= 0 or not view.same_length:  # no gate, or positions differ
            sentences: Iterable[re.Match[str]] = _SENTENCE.finditer(text)
        else:
            stretches = self._gate.stretches(view, marks.translate(_CODE_OF))
            sentences = _sentences_in(text, stretches) if stretches else ()
        flags: list[Flag] = []
        for start, end, probability, counts in self._score(text, view, sentences, threshold):
            if probability < threshold:
                continue
            strongest = sorted(counts, key=self.model.term_weight, reverse=True)[:2]
            severity: Severity = "critical" if probability >= self.config.critical_at else "high"
            flags.append(
                make_flag(
                    self.name,
                    "toxicity",
                    severity,
                    probability,
                    start,
                    end,
                    f"Toxic language (p={probability:.2f}; strongest words: "
                    f"{', '.join(strongest)})",
                )
            )
        odd = set(compress(view.words, marks.translate(_IS_ODD)))
        if self.config.targeted_insults:
            flags.extend(self._insults(text, view, b" ".join(odd), flags))
        for app in (ALL_APPS, output.app):
            pattern = self._patterns.get(app)
            if pattern is None:
                continue
            # Unless the encoding may hide it (see _exact_only), a match shows as its term
            # in the encoded text, with non-word characters around (or none): each run of
            # [a-z0-9_] in the term, its key among them, is a word of the text there, and
            # the keys are odd words (see _word_marks).
            keys = self._keys[app]
            if keys is not None and odd.isdisjoint(keys) and not _exact_only(view):
                continue
            for m in pattern.finditer(text):
                category = _category_of(self._terms[app], m.group())
                flags.append(
                    make_flag(
                        self.name,
                        category,
                        "high",
                        0.9,
                        m.start(),
                        m.end(),
                        f"Prohibited for {output.app}: {category.replace('_', ' ')}",
                    )
                )
        return flags


def _sentences_in(text: str, stretches: list[tuple[int, int]]) -> Iterator[re.Match[str]]:
    """The sentences of ``text`` that start inside the given [start, end) stretches.

    Each stretch starts at the text's start or right after a sentence stop, so searching
    from there finds exactly the sentences a full ``_SENTENCE.finditer`` finds there.
    """
    for start, end in stretches:
        for sentence in _SENTENCE.finditer(text, start):
            if sentence.start() >= end:
                break
            yield sentence
