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
