"""Unsupported claims: facts in the output that none of the supplied documents contain.

A hallucination signal for retrieval-augmented answers, only when context is given:
numbers (amounts, percentages, counts), dates, capitalised names and quoted statements
of the output are looked up in the context documents and the prompt, after light
normalisation (thousands separators, case, whitespace). Each missing one is a flag on
its own span.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from functools import lru_cache
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from hitl_prescreen.detectors.base import ScreenContext, make_flag
from hitl_shared.events import Flag, LLMOutput

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_DATE = re.compile(  # the leading lookahead lets re skip to candidate characters
    rf"(?=[JFMASOND\d])\b(?:(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})\.?,?\s+\d{{4}}"
    rf"|\d{{4}}-\d{{2}}-\d{{2}}"
    rf"|(?:{_MONTHS})\s+\d{{4}})\b"
)
# Where a date can start, in one scan: a month name (every one begins with one of these, no
# two overlap, each has one capital), or a dash four digits into an ISO date.
_DATE_START = re.compile(r"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec|-(?=\d\d-\d\d)")
# A figure: a currency sign not after a word character or "." and followed by a digit, or a
# digit not after a word character, "." or a currency sign. The first character is matched
# by one class so that re skips to candidates quickly (twice as fast as an alternation of
# the two cases, which each lookbehind then tells apart). The class is a superset of
# [$€£¥\d] without the Unicode category, which re checks more slowly (a scan takes a
# quarter less time): € is U+20AC, and no decimal digit lies between U+007F and U+0660.
_FIGURE_START = r"[$£¥0-9\u0660-\U0010ffff]"
_FIGURE_REST = (
    r"(?:(?<=[$€£¥])(?<![\w.][$€£¥])\d|(?<=\d)(?<![\w.$€£¥]\d))"
    r"[\d,]*(?:\.\d+)?(?:\s?%|\s?(?:k|m|bn)\b)?(?![\w])"
)
_NUMBER = re.compile(_FIGURE_START + _FIGURE_REST)
_QUOTE = re.compile(r"[\"“]([^\"”\n]{8,200})[\"”]")
# Names: capitalised words, or acronyms of 2-5 capitals (longer all-caps words are
# emphasis: IMPORTANT, JAILBREAK). What follows the first capital:
_NAME_REST = (
    r"(?<![\w'][A-Z])(?:[a-z]+(?:-[A-Z]?[a-z]+|'[A-Z][a-z]+)?|[A-Z]{1,4}(?![A-Za-z]))"
    r"(?:[ \t]+(?:(?:of|de|van|von|the|and|&)[ \t]+)?(?:[A-Z][a-z]+|[A-Z]{2,5}(?![A-Za-z])))*"
)
_ENTITY = re.compile("[A-Z]" + _NAME_REST)
# Figures and names in one scan of the text instead of two (a quarter less time). A name
# starts with a capital, a figure never does, and neither holds a character the other
# starts with (figures: digits, currency signs, ",.%kmbn" and whitespace; names: letters,
# "-'&", spaces and tabs), so this finds exactly the matches of _NUMBER and of _ENTITY, a
# match of either never hiding one of the other.
_FIGURE_OR_NAME = re.compile(
    rf"[$£¥0-9A-Z\u0660-\U0010ffff](?:(?<=[A-Z]){_NAME_REST}|{_FIGURE_REST})"
)
_CODE = re.compile(r"[=*(){}\[\]`;<>]|\b(?:SELECT|FROM|WHERE|def|return)\b")
_COMMON = frozenset(
    """I A An The This That These Those It Its You Your We Our They Their He She His Her
    If When Where What Which Who Why How Yes No Not Please Thanks Thank Hi Hello Sure Of
    And But Or So For To In On At By With From As Also Then There Here Once After Before
    Note Tip Let Good Great Happy Sorry Okay OK Unfortunately However Generally Usually
    Since Because Keep Make Start Open Choose Click Go See Use Try Expect Only Most Some
    All Any Each Every Both One Two Three Monday Tuesday Wednesday Thursday Friday
    Saturday Sunday Today Tomorrow Yesterday Internally Is Are Be Can Do Does Will
    Would Should Could May Might Must Just Still Even More Less Step First Second
    Third Finally Next Last Welcome Of Course Ugh""".split()  # noqa: SIM905
)


class ClaimsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    min_number: float = Field(
        default=10.0, description="Bare integers below this (list items, small counts) are skipped"
    )
    entities: bool = True


def _dates(text: str) -> Iterator[re.Match[str]]:
    """``_DATE.finditer(text)``, with the regex tried only where a date can start.

    A date starts at a month name ("March 5, 2024", "March 2024"), one to four characters
    before the whitespace that precedes one ("5th March 2024"), or four digits before an
    ISO dash ("2024-03-05"). Trying those starts in order, each from the end of the last
    match, finds what finditer finds, without trying the regex at every character (which
    costs ~45 us on 2 KB; this ~8).
    """
    starts: set[int] = set()
    for m in _DATE_START.finditer(text):
        month = start = m.start()
        if text[month] == "-":
            starts.add(month - 4)
            continue
        starts.add(month)
        while start and text[start - 1].isspace():  # \s is str.isspace
            start -= 1
        if start < month:
            starts.update(range(start - 4, start))  # 1-2 digits, maybe "st"/"nd"/"rd"/"th"
    end = 0
    for start in sorted(starts):
        if start >= end and (date := _DATE.match(text, start)):
            yield date
            end = date.end()


class _Spans:
    """Non-empty spans that do not overlap, sorted: the one starting last before a new
    span's end also ends last, so only it can overlap the new span (a bisection instead of
    a pass over every span flagged so far)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def overlaps(self, start: int, end: int) -> bool:
        """Whether ``[start, end)`` overlaps a span already taken."""
        at = bisect_left(self.starts, end)
        return at > 0 and self.ends[at - 1] > start

    def claim(self, start: int, end: int) -> bool:
        """Add ``[start, end)`` unless it overlaps a span already taken."""
        at = bisect_left(self.starts, end)
        if at and self.ends[at - 1] > start:
            return False
        self.starts.insert(at, start)
        self.ends.insert(at, end)
        return True


def _normalise(text: str) -> str:
    return " ".join(text.lower().replace(",", "").split())


@lru_cache(maxsize=1024)
def _evidence(documents: tuple[str, ...], prompt: str) -> tuple[str, frozenset[str]]:
    """Normalised text of the documents and prompt, and the numbers in it (cached: the
    same retrieved documents come back for many answers)."""
    corpus = _normalise(" ".join((*documents, prompt)))
    numbers = frozenset(
        n.group().lstrip("$€£¥").replace(",", "").rstrip("%").strip()
        for n in _NUMBER.finditer(corpus)
    )
    return corpus, numbers


class _Verdict(NamedTuple):
    """How a figure or name match is flagged, when it is."""

    offset: int  # where the flagged span starts in the match
    length: int
    category: str
    score: float
    explanation: str
    name: bool  # then not flagged before an apostrophe (a contraction or possessive)
    single: bool  # a name of one word: not flagged at a sentence start


def _figure_verdict(
    raw: str, corpus: str, numbers: frozenset[str], min_number: float
) -> _Verdict | None:
    """How the figure ``raw`` is flagged against the evidence, if it is."""
    value = raw.lstrip("$€£¥").replace(",", "").rstrip("%kmbn ").strip()
    if value in numbers:
        return None  # supported
    try:
        magnitude = float(value)
    except ValueError:
        return None
    plain = raw == value and "." not in raw
    if plain and magnitude < min_number:
        return None
    if plain and 1900 <= magnitude <= 2100 and _normalise(raw) in corpus:
        return None
    why = f"Figure '{raw}' not in context"
    return _Verdict(0, len(raw), "unsupported_number", 0.6, why, False, False)


def _name_verdict(name: str, corpus: str, vocabulary: frozenset[str]) -> _Verdict | None:
    """How the name match ``name`` is flagged against the evidence, if it is: its leading
    common words dropped ("The Harbor Fund"), unless an ordinary word is all that is left."""
    words = name.split()
    while words and words[0] in _COMMON:
        words.pop(0)
    if not words:
        return None
    entity = " ".join(words)
    single = len(words) == 1
    if single and (len(entity) < 3 or entity.lower() in vocabulary):
        return None
    if _normalise(entity) in corpus:
        return None
    offset = len(name) - len(entity) if name.endswith(entity) else 0
    why = f"Name '{entity[:60]}' not in context"
    return _Verdict(offset, len(entity), "unsupported_entity", 0.5, why, True, single)


def _vocabulary() -> frozenset[str]:
    """Ordinary English words (the toxicity model's vocabulary, which ships offline).

    A single capitalised word that is an ordinary word ("Settings", "Orders") is a UI
    label or emphasis far more often than a name, so only multi-word or unknown
    capitalised words count as named entities.
    """
    from hitl_prescreen.detectors.profanity_model import load_model

    return frozenset(load_model().idf)


class ClaimsDetector:
    name = "claims"

    def __init__(
        self, config: ClaimsConfig | None = None, vocabulary: frozenset[str] | None = None
    ) -> None:
        self.config = config or ClaimsConfig()
        self.vocabulary = vocabulary if vocabulary is not None else _vocabulary()

    def _verdict(self, raw: str, corpus: str, numbers: frozenset[str]) -> _Verdict | None:
        if "A" <= raw[0] <= "Z":
            return _name_verdict(raw, corpus, self.vocabulary)
        return _figure_verdict(raw, corpus, numbers, self.config.min_number)

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]:
        if not output.context:
            return []
        text = output.output_text
        corpus, numbers = _evidence(tuple(d.text for d in output.context), output.prompt)
        # (start, end, category, score, explanation) of each flag; the spans never overlap,
        # so sorting these sorts by start.
        found: list[tuple[int, int, str, float, str]] = []
        taken = _Spans()  # quotes and dates flagged

        if '"' in text or "“" in text:  # _QUOTE starts with one of them
            for m in _QUOTE.finditer(text):
                quoted = m.group(1)
                if len(quoted.split()) < 3 or _CODE.search(quoted):
                    continue
                if _normalise(quoted) not in corpus and taken.claim(m.start(), m.end()):
                    why = "Quoted statement not in context"
                    found.append((m.start(), m.end(), "unsupported_quote", 0.7, why))
        for m in _dates(text):
            if _normalise(m.group()) not in corpus and taken.claim(m.start(), m.end()):
                why = f"Date '{m.group()}' not in context"
                found.append((m.start(), m.end(), "unsupported_date", 0.65, why))
        # Then figures and names, in the spans quotes and dates left: no figure overlaps
        # another, nor a name another (each comes from one finditer, a name's flag from
        # inside its match), nor a figure a name (of two overlapping spans, one starts
        # inside the other, and neither holds a character the other starts with: see
        # _FIGURE_OR_NAME). So they need checking against quotes and dates only, and the
        # order figures first, names second holds with both found in one scan.
        names = self.config.entities and output.language.lower().startswith("en")
        # an answer repeats its figures and names: judge each distinct one once
        verdicts: dict[str, _Verdict | None] = {}
        for m in (_FIGURE_OR_NAME if names else _NUMBER).finditer(text):
            raw = m.group()
            try:
                verdict = verdicts[raw]
            except KeyError:
                verdict = verdicts[raw] = self._verdict(raw, corpus, numbers)
            if verdict is None:
                continue
            offset, length, category, score, why, name, single = verdict
            start = m.start() + offset
            if name and text[m.end() : m.end() + 1] in ("'", "\u2019"):
                continue  # a contraction or possessive of a common word
            if single and self._sentence_start(text, start):
                continue
            if not (taken.starts and taken.overlaps(start, start + length)):
                found.append((start, start + length, category, score, why))
        found.sort()
        return [
            make_flag(self.name, category, "medium", score, start, end, why)
            for start, end, category, score, why in found
        ]

    @staticmethod
    def _sentence_start(text: str, start: int) -> bool:
        """Whether only openers (spaces, quotes, "(", "*", "-") stand between ``start`` and
        the text's or a sentence's beginning (walked back, not copied: names are many)."""
        while start and text[start - 1] in " \t\"'“(*-":
            start -= 1
        return not start or text[start - 1] in ".!?:\n"
