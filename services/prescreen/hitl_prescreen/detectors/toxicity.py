"""Toxic language and per-app prohibited content.

Toxicity comes from the alt-profanity-check model shipped in its wheel, scored per
sentence (one insult in a long friendly answer is not diluted by the rest) and flagged
on the sentence's span. Prohibited categories are plain term lists per app from config,
matched on word boundaries, case-insensitively.
"""

from __future__ import annotations

import re
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from hitl_prescreen.detectors.base import ScreenContext, make_flag
from hitl_prescreen.detectors.profanity_model import TOKEN, LinearProfanityModel, load_model
from hitl_shared.events import Flag, LLMOutput, Severity

ALL_APPS = "*"
_SENTENCE = re.compile("[^.!?\n\u3002\uff01\uff1f]+[.!?\u3002\uff01\uff1f]*")  # with CJK stops


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


def _sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the sentence holding [start, end), without surrounding blanks."""
    for sentence in _SENTENCE.finditer(text):
        if sentence.start() <= start < sentence.end():
            raw = sentence.group()
            left = sentence.start() + len(raw) - len(raw.lstrip())
            return left, sentence.start() + len(raw.rstrip())
    return start, end


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

    def _insults(self, text: str, found: list[Flag]) -> list[Flag]:
        """Sentences with a targeted insult that the model did not already flag."""
        lowered = text.lower()
        if not any(map(lowered.__contains__, _INSULT_HINTS)):
            return []
        flags: list[Flag] = []
        covered = [(f.start, f.end) for f in found]
        for m in _TARGETED_INSULT.finditer(text):
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

    def sentence_scores(
        self, text: str, floor: float = 0.0
    ) -> list[tuple[int, int, float, Counter[str]]]:
        """(start, end, probability, token counts) of each sentence that can reach ``floor``.

        Sentences whose words cannot add up to ``floor`` (a cheap bound) are left out.
        """
        scored = []
        lowered = text.lower()
        same_length = len(lowered) == len(text)  # lower() can grow some letters
        for sentence in _SENTENCE.finditer(text):
            piece = lowered[sentence.start() : sentence.end()] if same_length else None
            tokens = TOKEN.findall(piece or sentence.group().lower())
            if not tokens or (floor > 0 and not self.model.may_reach(set(tokens), floor)):
                continue
            counts = Counter(tokens)
            probability = self.model.probability(counts)
            raw = sentence.group()
            start = sentence.start() + len(raw) - len(raw.lstrip())
            end = sentence.start() + len(raw.rstrip())
            scored.append((start, end, probability, counts))
        return scored

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]:
        text = output.output_text
        flags: list[Flag] = []
        for start, end, probability, counts in self.sentence_scores(text, self.config.threshold):
            if probability < self.config.threshold:
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
        if self.config.targeted_insults:
            flags.extend(self._insults(text, flags))
        for app in (ALL_APPS, output.app):
            pattern = self._patterns.get(app)
            if pattern is None:
                continue
            for m in pattern.finditer(text):
                category = self._terms[app][m.group().lower()]
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
