"""A fixed, hand-computed set of review decisions (see the expectations in test_metrics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hitl_shared.events import ReviewDecision

DAY1 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY2 = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)

BILLING = {"use_case": "billing", "tier": "low"}
MEDICAL = {"use_case": "medical", "tier": "high"}

# (item, reviewer, verdict, labels, severity, segment, version, time_s, final)
ROWS: list[tuple[str, str, str, tuple[str, ...], str | None, dict[str, str], str, float, bool]] = [
    ("i1", "r1", "approve", (), None, BILLING, "1", 10, True),
    ("i2", "r1", "edit", ("factual_error",), "medium", BILLING, "1", 30, True),
    ("i3", "r2", "reject", ("pii",), "high", MEDICAL, "2", 20, True),
    ("i4", "r2", "escalate", (), None, MEDICAL, "2", 5, False),
    ("i4", "r3", "approve", (), None, MEDICAL, "2", 40, True),
    ("i5", "r1", "approve", (), None, BILLING, "1", 8, False),
    ("i5", "r2", "approve", (), None, BILLING, "1", 12, True),
    ("i6", "r1", "edit", ("style",), "low", BILLING, "2", 25, False),
    ("i6", "r2", "edit", ("style",), "low", BILLING, "2", 35, True),
    ("i7", "r1", "approve", (), None, BILLING, "2", 6, False),
    ("i7", "r2", "edit", ("factual_error", "reasoning_flaw"), "medium", BILLING, "2", 50, True),
    ("i8", "r1", "reject", ("policy_violation",), "critical", MEDICAL, "1", 15, False),
    ("i8", "r2", "reject", ("policy_violation",), "critical", MEDICAL, "1", 18, True),
]


def decisions(prefix: str = "", app: str = "bot") -> list[ReviewDecision]:
    made = []
    for n, (item, reviewer, verdict, labels, severity, seg, version, spent, final) in enumerate(
        ROWS
    ):
        at = DAY1 + timedelta(minutes=10 * n) if n < 7 else DAY2 + timedelta(minutes=10 * (n - 7))
        fields: dict[str, Any] = {
            "event_id": f"{prefix}d{n + 1}",
            "item_id": f"{prefix}{item}",
            "occurred_at": at,
            "task_id": f"task-{prefix}{item}",
            "reviewer_id": reviewer,
            "reviewer_level": "L2" if reviewer == "r3" else "L1",
            "verdict": verdict,
            "original_text": f"Original answer for {item}.",
            "edited_text": f"Corrected answer for {item}." if verdict == "edit" else None,
            "reason": "needs a specialist" if verdict in ("reject", "escalate") else None,
            "labels": labels,
            "severity": severity,
            "time_spent_s": spent,
            "final": final,
            "app": app,
            "model": "m-1",
            "prompt_template_id": "answer",
            "prompt_template_version": version,
            **seg,
        }
        made.append(ReviewDecision(**fields))
    return made
