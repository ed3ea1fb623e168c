"""Adaptive sampling: from a segment's reviewed outcomes to its next review rate.

Method (see docs/adr/0007-adaptive-sampling.md): each segment keeps its latest ``window``
settled outcomes by event time, so old outcomes drop out and a change shows, and the
window's content does not depend on the order decisions were processed in (a replay
rebuilds it exactly). With n outcomes and e errors in the window the error rate gets a
Beta(1 + e, 1 + n - e) posterior; its upper credible bound ``p_hi`` is the pessimistic
error rate. The review rate is the smallest ``r`` with
``p_hi * (1 - r) <= escape_budget`` (errors left unreviewed stay within budget), never
below the tier floor and never above 1.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass

from hitl_feedback.config import FeedbackConfig
from hitl_feedback.stats import beta_quantile
from hitl_shared.events import PolicyUpdate, Tier

TIER_FLOORS: dict[str, float] = {"low": 0.05, "medium": 0.25, "high": 0.75, "critical": 1.0}
METHOD = "beta-posterior-upper-bound"
_POLICY_NS = uuid.UUID("5b7c8f1e-2d0a-4a51-9d7e-0c6f1b2a3e44")


@dataclass(frozen=True)
class Evidence:
    """A segment's outcomes: all-time counts, and the counts inside the window."""

    reviewed: int = 0
    errors: int = 0
    window_items: int = 0
    window_errors: int = 0


class Window:
    """The in-memory twin of the Redis window, for outcomes arriving in time order."""

    def __init__(self, size: int) -> None:
        self.outcomes: deque[bool] = deque(maxlen=size)
        self.evidence = Evidence()

    def observe(self, error: bool) -> Evidence:
        self.outcomes.append(error)
        self.evidence = Evidence(
            reviewed=self.evidence.reviewed + 1,
            errors=self.evidence.errors + int(error),
            window_items=len(self.outcomes),
            window_errors=sum(self.outcomes),
        )
        return self.evidence


def error_rate_bound(evidence: Evidence, credibility: float) -> float:
    """Upper ``credibility`` quantile of the Beta posterior under a uniform prior."""
    n, e = evidence.window_items, evidence.window_errors
    return beta_quantile(credibility, 1.0 + e, 1.0 + n - e)


def rate_for_bound(tier: str, p_hi: float, escape_budget: float) -> float:
    needed = 1.0 - escape_budget / p_hi if p_hi > escape_budget else 0.0
    return round(min(1.0, max(TIER_FLOORS[tier], needed)), 4)


def review_rate(tier: str, evidence: Evidence, config: FeedbackConfig) -> float:
    return rate_for_bound(
        tier, error_rate_bound(evidence, config.credibility), config.escape_budget
    )


def steady_state_rate(tier: str, true_error_rate: float, config: FeedbackConfig) -> float:
    """The rate the method tends to with unlimited evidence at a fixed error rate."""
    return rate_for_bound(tier, true_error_rate, config.escape_budget)


def due(evidence: Evidence, config: FeedbackConfig) -> bool:
    return evidence.reviewed > 0 and evidence.reviewed % config.update_every == 0


def policy_update(
    app: str, use_case: str, tier: Tier, evidence: Evidence, config: FeedbackConfig
) -> PolicyUpdate:
    """The update for a segment after ``evidence.reviewed`` outcomes.

    Sequence and event id follow from the counts, so a redelivered decision re-emits the
    very same update and the router can drop it.
    """
    segment = f"{app}:{use_case}:{tier}"
    sequence = evidence.reviewed // config.update_every
    return PolicyUpdate(
        event_id=str(uuid.uuid5(_POLICY_NS, f"{segment}#{sequence}")),
        item_id=_segment_item_id(segment),
        app=app,
        use_case=use_case,
        tier=tier,
        review_rate=review_rate(tier, evidence, config),
        sequence=sequence,
        method=(
            f"{METHOD}: Beta(1+e,1+n-e) q{config.credibility:g} over the last {config.window} "
            f"outcomes, "
            f"escape budget {config.escape_budget:g}, tier floor {TIER_FLOORS[tier]:g}"
        ),
        observed_items=evidence.reviewed,
        observed_errors=evidence.errors,
    )


def _segment_item_id(segment: str) -> str:
    """Segment names become valid item ids (the partition key of policy updates)."""
    safe = "".join(c if c.isalnum() or c in "._:-" else "_" for c in segment)
    return safe[:128] or "segment"
