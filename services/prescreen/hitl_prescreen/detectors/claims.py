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
# Where a date can start: every month name begins with one of these (and no two overlap,
# each has one capital), and an ISO date has a dash four digits in.
_MONTH_START = re.compile(r"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec")
_ISO_DASH = re.compile(r"-(?=\d\d-\d\d)")
# A currency sign not after a word character or "." and followed by a digit, or a digit not
# after a word character, "." or a currency sign. The first character is matched by one
# class so that re skips to candidates quickly (twice as fast as an alternation of the
# two cases, which each lookbehind then tells apart).
_NUMBER = re.compile(
    r"[$€£¥\d](?:(?<=[$€£¥])(?<![\w.][$€£¥])\d|(?<=\d)(?<![\w.$€£¥]\d))"
    r"[\d,]*(?:\.\d+)?(?:\s?%|\s?(?:k|m|bn)\b)?(?![\w])"
)
_QUOTE = re.compile(r"[\"“]([^\"”\n]{8,200})[\"”]")
# Names: capitalised words, or acronyms of 2-5 capitals (longer all-caps words are
# emphasis: IMPORTANT, JAILBREAK).
_ENTITY = re.compile(
    r"[A-Z](?<![\w'][A-Z])(?:[a-z]+(?:-[A-Z]?[a-z]+|'[A-Z][a-z]+)?|[A-Z]{1,4}(?![A-Za-z]))"
    r"(?:[ \t]+(?:(?:of|de|van|von|the|and|&)[ \t]+)?(?:[A-Z][a-z]+|[A-Z]{2,5}(?![A-Za-z])))*"
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
    costs ~45 us on 2 KB; this ~10).
    """
    starts = {m.start() - 4 for m in _ISO_DASH.finditer(text)}
    for m in _MONTH_START.finditer(text):
        month = start = m.start()
        starts.add(month)
        while start and text[start - 1].isspace():  # \s is str.isspace
            start -= 1
        if start < month:
            starts.update(range(start - 4, start))  # 1-2 digits, maybe "st"/"nd"/"rd"/"th"
    end = 0
    for start in sorted(starts):
        if start >= end and (m := _DATE.match(text, start)):
            yield m
            end = m.end()


class _Spans:
    """Non-empty spans that do not overlap, sorted: the one starting last before a new
    span's end also ends last, so only it can overlap the new span (a bisection instead of
    a pass over every span flagged so far)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

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

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]:
        if not output.context:
            return []
        text = output.output_text
        corpus, numbers = _evidence(tuple(d.text for d in output.context), output.prompt)
        flags: list[Flag] = []
        taken = _Spans()

        def add(start: int, end: int, category: str, score: float, why: str) -> None:
            if taken.claim(start, end):
                flags.append(make_flag(self.name, category, "medium", score, start, end, why))

        for m in _QUOTE.finditer(text):
            quoted = m.group(1)
            if len(quoted.split()) < 3 or _CODE.search(quoted):
                continue
            if _normalise(quoted) not in corpus:
                add(m.start(), m.end(), "unsupported_quote", 0.7, "Quoted statement not in context")
        for m in _dates(text):
            if _normalise(m.group()) not in corpus:
                add(
                    m.start(),
                    m.end(),
                    "unsupported_date",
                    0.65,
                    f"Date '{m.group()}' not in context",
                )
        for m in _NUMBER.finditer(text):
            raw = m.group()
            value = raw.lstrip("$€£¥").replace(",", "").rstrip("%kmbn ").strip()
            if value in numbers:
                continue  # supported: nothing below could flag it
            try:
                magnitude = float(value)
            except ValueError:
                continue
            plain = raw == value and "." not in raw
            if plain and magnitude < self.config.min_number:
                continue
            if plain and 1900 <= magnitude <= 2100 and _normalise(raw) in corpus:
                continue
            add(m.start(), m.end(), "unsupported_number", 0.6, f"Figure '{raw}' not in context")
        if self.config.entities and output.language.lower().startswith("en"):
            for m in _ENTITY.finditer(text):
                name = m.group()
                if name in _COMMON:
                    continue  # most matches: one common word, nothing left once dropped
                if text[m.end() : m.end() + 1] in ("'", "\u2019"):
                    continue  # a contraction or possessive of a common word
                words = name.split()
                while words and words[0] in _COMMON:
                    words.pop(0)
                if not words:
                    continue
                entity = " ".join(words)
                start = m.end() - len(entity) if name.endswith(entity) else m.start()
                if len(words) == 1 and (
                    len(entity) < 3
                    or entity.lower() in self.vocabulary
                    or self._sentence_start(text, start)
                ):
                    continue
                if _normalise(entity) not in corpus:
                    add(start, start + len(entity), "unsupported_entity", 0.5,
                        f"Name '{entity[:60]}' not in context")  # fmt: skip
        return sorted(flags, key=lambda f: f.start)

    @staticmethod
    def _sentence_start(text: str, start: int) -> bool:
        """Whether only openers (spaces, quotes, "(", "*", "-") stand between ``start`` and
        the text's or a sentence's beginning (walked back, not copied: names are many)."""
        while start and text[start - 1] in " \t\"'“(*-":
            start -= 1
        return not start or text[start - 1] in ".!?:\n"
