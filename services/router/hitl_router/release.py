"""Turning human verdicts into releases and retractions (pure).

Every release and retraction of an item carries an event id derived from the item id,
so a replay produces the same event, never a second different one (ADR 3, ADR 6).
"""

from __future__ import annotations

import uuid

from hitl_shared.events import Outcome, Release, Retraction, ReviewDecision, RoutingDecision

REJECTED_FALLBACK = "This answer was withheld after human review. Please contact support."
_RELEASE_NS = uuid.UUID("6f1c8a52-3d0e-4b7e-9a51-0c2f6a1d7e11")


def release_event_id(item_id: str) -> str:
    """One release per item: a replayed release carries the same event id."""
    return str(uuid.uuid5(_RELEASE_NS, f"release:{item_id}"))


def retraction_event_id(item_id: str) -> str:
    return str(uuid.uuid5(_RELEASE_NS, f"retraction:{item_id}"))


def auto_release(decision: RoutingDecision, text: str) -> Release:
    return Release(
        event_id=release_event_id(decision.item_id),
        item_id=decision.item_id,
        app=decision.app,
        outcome="auto_released",
        text=text,
        policy_version=decision.policy_version,
        reason=",".join(decision.rules_fired)[:2000],
    )


def release_after_review(
    routing: RoutingDecision, verdict: ReviewDecision, fallback: str = REJECTED_FALLBACK
) -> Release:
    """Approved -> original, edited -> the edit, rejected -> the app's fallback text."""
    outcome: Outcome
    if verdict.verdict == "approve":
        outcome, text = "approved", verdict.original_text
    elif verdict.verdict == "edit":
        outcome, text = "edited", verdict.edited_text or verdict.original_text
    else:
        outcome = "blocked" if routing.action == "block" else "rejected"
        text = fallback
    return Release(
        event_id=release_event_id(routing.item_id),
        item_id=routing.item_id,
        app=routing.app,
        outcome=outcome,
        text=text,
        reason=verdict.reason,
        policy_version=routing.policy_version,
        decided_by=(verdict.reviewer_id,),
    )


def retraction_after_review(
    routing: RoutingDecision, verdict: ReviewDecision, fallback: str = REJECTED_FALLBACK
) -> Retraction | None:
    """Parallel mode: the text is already out; a reject or edit withdraws it."""
    if verdict.verdict == "approve":
        return None
    replacement = verdict.edited_text if verdict.verdict == "edit" else fallback
    return Retraction(
        event_id=retraction_event_id(routing.item_id),
        item_id=routing.item_id,
        app=routing.app,
        reason=verdict.reason or f"reviewer {verdict.verdict}",
        replacement_text=replacement,
        decided_by=(verdict.reviewer_id,),
    )
