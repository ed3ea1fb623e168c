"""The common detector interface and the small helpers every detector shares.

A detector is a pure object: it reads one ``LLMOutput`` plus whatever state the async
wiring loaded for it (``ScreenContext``) and returns flags. It never does I/O, so it can
be tested and evaluated on plain data and timed per item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hitl_shared.events import Flag, LLMOutput, Severity

if TYPE_CHECKING:
    from hitl_prescreen.detectors.anomaly import Baseline
    from hitl_prescreen.detectors.edge_cases import EdgeCaseIndex


@dataclass(frozen=True)
class ScreenContext:
    """State a detector may read, loaded from Redis by the wiring before screening."""

    baseline: Baseline | None = None
    edge_cases: EdgeCaseIndex | None = None


EMPTY_CONTEXT = ScreenContext()


class Detector(Protocol):
    """What every detector module provides: a name and a pure ``detect``."""

    name: str

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]: ...


def make_flag(
    detector: str,
    category: str,
    severity: Severity,
    score: float,
    start: int,
    end: int,
    explanation: str,
) -> Flag:
    """A flag with its score clamped to [0, 1] and its explanation kept to one short line."""
    line = " ".join(explanation.split())
    return Flag(
        detector=detector,
        category=category,
        severity=severity,
        score=round(min(1.0, max(0.0, score)), 4),
        start=start,
        end=end,
        explanation=line[:300],
    )


def mask(value: str, keep: int = 4) -> str:
    """A value shortened for an explanation, so flags never repeat a full secret."""
    if len(value) <= keep:
        return "*" * len(value)
    return "*" * min(8, len(value) - keep) + value[-keep:]


# Non-ASCII characters that case-fold onto ASCII letters: str.lower() turns U+0130 (capital
# I with dot) into "i" plus a combining dot and U+212A (Kelvin sign) into "k", and
# re.IGNORECASE also matches U+0131 (dotless i) with "i" and U+017F (long s) with "s".
# Without them, an ASCII word is in str.lower(text) exactly when it is in the UTF-8 bytes
# with their ASCII letters lower-cased, and so is every case-insensitive match of it: the
# detectors' byte-level shortcuts hold exactly on such "plain" text (tests check every
# code point).
FOLDS_TO_ASCII = ("\u0130", "\u0131", "\u017f", "\u212a")


def is_plain(text: str, utf8: bytes | None = None) -> bool:
    """Whether no FOLDS_TO_ASCII character is in ``text``; ``utf8`` is its UTF-8 bytes.

    In UTF-8, U+0130, U+0131 and U+017F are C4 B0, C4 B1 and C5 BF, U+212A is E2 84 AA:
    without a byte C4, C5 or AA (three memchr-speed searches, ~4x faster than looking for
    the four characters in the text) none of them is there.
    """
    if utf8 is not None and b"\xc4" not in utf8 and b"\xc5" not in utf8 and b"\xaa" not in utf8:
        return True
    return not any(map(text.__contains__, FOLDS_TO_ASCII))
