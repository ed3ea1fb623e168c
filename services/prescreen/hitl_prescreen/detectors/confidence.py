"""Low model confidence, from the app's own confidence or the token log-probabilities."""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict, Field

from hitl_prescreen.detectors.base import ScreenContext, make_flag
from hitl_prescreen.detectors.injection import Phrases, text_grams
from hitl_shared.events import Flag, LLMOutput


class ConfidenceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    mean_logprob_threshold: float = Field(
        default=-1.0, le=0.0, description="Mean token log-prob below this is low confidence"
    )
    hedges: bool = Field(default=True, description="Flag answers that say they are unsure")


# The model saying it is unsure, in words: a signal even when no score is supplied.
HEDGES = re.compile(
    r"(?=[iptd])\b(?:I\s+(?:might|may|could)\s+be\s+wrong|I'?\s*a?m\s+not\s+(?:entirely\s+|completely\s+|"
    r"fully\s+|100%\s+)?(?:sure|certain|confident)|I'?m\s+not\s+(?:entirely\s+)?sure|"
    r"if\s+I\s+remember\s+(?:correctly|right)|I\s+(?:couldn'?t|could\s+not|can'?t|cannot)\s+"
    r"(?:confirm|verify)|(?:please\s+)?double[- ]check\s+this|I\s+(?:believe|think),?\s+but\s+I|"
    r"don'?t\s+quote\s+me|to\s+the\s+best\s+of\s+my\s+knowledge|I\s+may\s+be\s+mistaken)",
    re.IGNORECASE,
)


_HEDGE_HINTS = (
    "wrong", "sure", "certain", "confident", "remember", "confirm", "verify", "double",
    "believe", "think", "quote", "knowledge", "mistaken",
)  # fmt: skip

# A narrower test that runs first, on the text seen as plain ASCII: letters lower-cased,
# every whitespace run one space. Each HEDGES alternative, seen that way, contains one of
# these phrases, or a group's part and one of its phrases (\s+ becomes one space, "I"
# becomes "i"), so a text without has no hedge, and the regex and the hint check above
# are skipped (the hints alone pass half of all long answers: "Sure." is common). The view
# is only made when no character can stand for an ASCII letter under re.IGNORECASE
# (U+0130, U+0131, U+017F, U+212A) and there is no non-ASCII whitespace, so that every
# match is ASCII.
_HEDGE_PHRASES = (
    b" be wrong", b"if i remember ", b"t confirm", b"t verify", b"t quote me",
    b"to the best of my knowledge", b"may be mistaken",
)  # fmt: skip
# Phrases looked for only once a part they also need is found (saves scans of 2 KB).
_HEDGE_GROUPS = (
    (b" but i", (b"believe, but i", b"believe but i", b"think, but i", b"think but i")),
    (b"check this", (b"double check this", b"double-check this")),
    (  # "I'm not (entirely ...) sure / certain / confident"
        b"m not ",
        tuple(
            f"{qualifier} {word}".encode()
            for qualifier in ("not", "entirely", "completely", "fully", "100%")
            for word in ("sure", "certain", "confident")
        ),
    ),
)
_ASCII = bytes(range(128))
_NOT_PLAIN = frozenset(
    "\u0130\u0131\u017f\u212a"  # match i, i, s, k under re.IGNORECASE
    "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"  # whitespace (\s) outside ASCII
)
# Every phrase, grouped or not, looked up by its runs of four bytes in the pass the
# injection detector makes over the same text (see ``Phrases``): where none is a candidate,
# none is in the view, and neither test below can pass.
_HEDGE_RUNS = Phrases(
    _HEDGE_PHRASES + tuple(phrase for _, group in _HEDGE_GROUPS for phrase in group)
)


def _may_hedge(text: str) -> bool:
    """Whether HEDGES can match ``text`` (False only when it cannot).

    The plain view is the one ``text_grams`` makes, used only where no character in it can
    stand for a hedge's letter or space: without ``_NOT_PLAIN`` characters, and mostly in
    ASCII (elsewhere the str check is as quick).
    """
    grams = text_grams(text)
    if grams is None or (
        len(grams.data) != len(text)
        and not _NOT_PLAIN.isdisjoint(grams.data.translate(None, _ASCII).decode())
    ):
        return True
    if not _HEDGE_RUNS.candidates(grams):  # (all but a few percent of texts)
        return False
    view = grams.plain
    return any(map(view.__contains__, _HEDGE_PHRASES)) or any(
        part in view and any(map(view.__contains__, phrases)) for part, phrases in _HEDGE_GROUPS
    )


class ConfidenceDetector:
    name = "confidence"

    def __init__(self, config: ConfidenceConfig | None = None) -> None:
        self.config = config or ConfidenceConfig()

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]:
        flags: list[Flag] = []
        end = len(output.output_text)
        if output.confidence is not None and output.confidence < self.config.threshold:
            flags.append(
                make_flag(
                    self.name,
                    "low_confidence",
                    "medium" if output.confidence >= self.config.threshold / 2 else "high",
                    1.0 - output.confidence,
                    0,
                    end,
                    f"Model confidence {output.confidence:.2f} below {self.config.threshold:.2f}",
                )
            )
        logprobs = output.token_logprobs
        if logprobs:
            finite = [lp for lp in logprobs if math.isfinite(lp)] or [-50.0]
            mean = sum(finite) / len(finite)
            if mean < self.config.mean_logprob_threshold:
                flags.append(
                    make_flag(
                        self.name,
                        "low_token_probability",
                        "medium",
                        1.0 - math.exp(mean),
                        0,
                        end,
                        f"Mean token log-probability {mean:.2f} below "
                        f"{self.config.mean_logprob_threshold:.2f}",
                    )
                )
        text = output.output_text
        if (
            self.config.hedges
            and _may_hedge(text)
            and any(map(text.lower().__contains__, _HEDGE_HINTS))
        ):
            for m in HEDGES.finditer(text):
                flags.append(
                    make_flag(
                        self.name,
                        "hedged_answer",
                        "low",
                        0.6,
                        m.start(),
                        m.end(),
                        "The answer says it is unsure of itself",
                    )
                )
        return flags
