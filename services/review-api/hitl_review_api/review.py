"""The approval rules, kept pure so every authorization rule has a unit test.

A task needs ``approvals_required`` approvals (approve or edit) from distinct reviewers
(the queue never hands a task back to someone who already decided it). Critical items
need at least two, and at least one approver at L2 or above: an L1 can neither finish
nor reject a critical item alone; their verdict is recorded (``final=False``) and the
task goes to an L2 bucket. Escalation moves the task one level up.
"""

from __future__ import annotations

from dataclasses import dataclass

from hitl_shared.events import ReviewDecision, ReviewTask, Verdict
from hitl_shared.queue import LEVELS, bucket_name

APPROVING = ("approve", "edit")
SENIOR = ("L2", "L3")


def rank(level: str) -> int:
    return LEVELS.index(level)


def approvals_needed(task: ReviewTask) -> int:
    return max(task.approvals_required, 2 if task.tier == "critical" else 1)


def needs_senior(task: ReviewTask) -> bool:
    return task.tier == "critical" or approvals_needed(task) >= 2


def split_bucket(bucket: str, task: ReviewTask) -> tuple[str, str, str]:
    parts = bucket.split(":")
    if len(parts) == 3 and parts[0] in LEVELS:
        return parts[0], parts[1], parts[2]
    return task.required_level, task.skills[0] if task.skills else "general", task.language


@dataclass(frozen=True)
class Outcome:
    """What one verdict does: the verdict and text to publish, and where the task goes."""

    verdict: Verdict
    edited_text: str | None
    final: bool
    requeue_bucket: str | None  # None with final=False means "same bucket"
    next_step: str  # done | second_approval | senior_review | escalated


def current_text(task: ReviewTask, prior: list[ReviewDecision]) -> str:
    """The text as the last approver left it (the original if nobody edited yet)."""
    text = task.screened.output.output_text
    for decision in prior:
        if decision.verdict == "edit" and decision.edited_text:
            text = decision.edited_text
    return text


def outcome(
    task: ReviewTask,
    prior: list[ReviewDecision],
    *,
    level: str,
    verdict: Verdict,
    edited_text: str | None,
    bucket: str,
) -> Outcome:
    _, skill, language = split_bucket(bucket, task)
    senior_bucket = bucket_name("L2", skill, language)
    if verdict == "escalate":
        here = max(rank(level), rank(split_bucket(bucket, task)[0]))
        up = LEVELS[min(here + 1, len(LEVELS) - 1)]
        return Outcome(verdict, None, False, bucket_name(up, skill, language), "escalated")
    if verdict == "reject":
        if needs_senior(task) and level not in SENIOR:
            return Outcome(verdict, None, False, senior_bucket, "senior_review")
        return Outcome(verdict, None, True, None, "done")

    # approve or edit: the approved text is the edit, or what earlier approvers left
    original = task.screened.output.output_text
    text = edited_text if verdict == "edit" and edited_text else current_text(task, prior)
    approvers = [d for d in prior if d.verdict in APPROVING]
    count = len({d.reviewer_id for d in approvers}) + 1
    senior = level in SENIOR or any(d.reviewer_level in SENIOR for d in approvers)
    final = count >= approvals_needed(task) and (senior or not needs_senior(task))
    published: Verdict = "edit" if text != original else "approve"
    edited = text if published == "edit" else None
    if final:
        return Outcome(published, edited, True, None, "done")
    if needs_senior(task) and not senior:
        return Outcome(published, edited, False, senior_bucket, "senior_review")
    if rank(split_bucket(bucket, task)[0]) > rank("L2"):
        # an L3 has approved: the second pair of eyes may be any senior (L2 or above),
        # otherwise a team with a single L3 could never finish an item that needs one
        return Outcome(published, edited, False, senior_bucket, "second_approval")
    return Outcome(published, edited, False, None, "second_approval")
