"""Pure feedback logic: from a segment's counts to its next review rate."""

from __future__ import annotations

from dataclasses import dataclass

TIER_FLOORS = {"low": 0.05, "medium": 0.25, "high": 0.75, "critical": 1.0}
UPDATE_EVERY = 10


@dataclass(frozen=True)
class SegmentCounts:
    reviewed: int
    errors: int


def is_error(verdict: str) -> bool:
    """A human had to change or stop the output."""
    return verdict in ("edit", "reject")


def next_review_rate(tier: str, counts: SegmentCounts, *, multiplier: float = 3.0) -> float:
    """Posterior-mean error rate (Beta(1,1) prior) scaled up, never below the tier floor."""
    mean = (counts.errors + 1) / (counts.reviewed + 2)
    return round(min(1.0, max(TIER_FLOORS[tier], multiplier * mean)), 4)
