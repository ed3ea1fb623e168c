"""Structured annotations: one review decision, with the context needed to learn from it.

An annotation is what the feedback loop keeps for every human verdict: the original and
modified text, how much was changed, taxonomy labels, severity, who decided, how long
it took, and which app / use case / tier / model / prompt template version produced the
output. The prompt itself comes from the router's item record when it is still there.
"""

from __future__ import annotations

import difflib
import json

from pydantic import AwareDatetime, BaseModel, ConfigDict

from hitl_shared.events import ReviewDecision, ReviewerLevel, ScreenedOutput, Severity, Tier

UNKNOWN = "unknown"
ERROR_VERDICTS = frozenset({"edit", "reject"})
HIGH_SEVERITIES = frozenset({"high", "critical"})
COMPLIANCE_LABELS = frozenset({"pii", "policy_violation", "alignment_safety"})


class Annotation(BaseModel):
    """One reviewer's verdict on one item, flattened for analysis and export."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: str
    item_id: str
    task_id: str
    occurred_at: AwareDatetime
    reviewer_id: str
    reviewer_level: ReviewerLevel
    verdict: str
    final: bool
    app: str = UNKNOWN
    use_case: str = UNKNOWN
    tier: Tier | None = None
    model: str = UNKNOWN
    prompt_template_id: str = UNKNOWN
    prompt_template_version: str = UNKNOWN
    labels: tuple[str, ...] = ()
    severity: Severity | None = None
    time_spent_s: float = 0.0
    original_text: str
    modified_text: str | None = None
    diff_chars: int = 0
    reason: str | None = None
    notes: str | None = None
    prompt: str | None = None

    @property
    def is_error(self) -> bool:
        """A human had to change or stop the output."""
        return self.verdict in ERROR_VERDICTS

    @property
    def is_outcome(self) -> bool:
        """The decision that settles the item (escalations hand it on, they do not settle)."""
        return self.final and self.verdict != "escalate"

    @property
    def corrected_text(self) -> str | None:
        """What the human says the output should have been (None for a bare rejection)."""
        if self.verdict == "edit":
            return self.modified_text
        if self.verdict == "approve":
            return self.original_text
        return None

    @property
    def segment(self) -> str:
        return segment_key(self.app, self.use_case, self.tier or UNKNOWN)


def segment_key(app: str, use_case: str, tier: str) -> str:
    return f"{app}:{use_case}:{tier}"


def diff_chars(original: str, modified: str | None) -> int:
    """Characters inserted plus deleted to turn the original into the modified text."""
    if modified is None or modified == original:
        return 0
    matcher = difflib.SequenceMatcher(None, original, modified, autojunk=False)
    changed = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            changed += (i2 - i1) + (j2 - j1)
    return changed


def prompt_of(screened_json: bytes | str | None) -> str | None:
    """The prompt from the router's stored ScreenedOutput, None when absent or unreadable."""
    if not screened_json:
        return None
    try:
        return ScreenedOutput.model_validate_json(screened_json).output.prompt
    except ValueError:
        return None


def annotate(decision: ReviewDecision, prompt: str | None = None) -> Annotation:
    modified = decision.edited_text if decision.verdict == "edit" else None
    return Annotation(
        event_id=decision.event_id,
        item_id=decision.item_id,
        task_id=decision.task_id,
        occurred_at=decision.occurred_at,
        reviewer_id=decision.reviewer_id,
        reviewer_level=decision.reviewer_level,
        verdict=decision.verdict,
        final=decision.final,
        app=decision.app or UNKNOWN,
        use_case=decision.use_case or UNKNOWN,
        tier=decision.tier,
        model=decision.model or UNKNOWN,
        prompt_template_id=decision.prompt_template_id or UNKNOWN,
        prompt_template_version=decision.prompt_template_version or UNKNOWN,
        labels=tuple(decision.labels),
        severity=decision.severity,
        time_spent_s=decision.time_spent_s,
        original_text=decision.original_text,
        modified_text=modified,
        diff_chars=diff_chars(decision.original_text, modified),
        reason=decision.reason,
        notes=decision.notes,
        prompt=prompt,
    )


def edge_case_entry(annotation: Annotation) -> dict[str, object] | None:
    """The knowledge-base entry for a settled edit or rejection, None for anything else.

    Prescreen matches new outputs against ``text``; reviewers see ``note`` (the resolution).
    """
    if not (annotation.is_outcome and annotation.is_error):
        return None
    why = annotation.reason or annotation.notes or ""
    if annotation.verdict == "edit":
        note = f"edited ({annotation.diff_chars} chars changed)"
        if why:
            note += f": {why}"
        note += f"\ncorrected: {annotation.modified_text}"
    else:
        note = f"rejected: {why}" if why else "rejected"
    return {
        "case_id": annotation.item_id,
        "text": annotation.original_text,
        "labels": list(annotation.labels),
        "item_id": annotation.item_id,
        "note": note[:4000],
    }


def to_json(annotation: Annotation) -> str:
    return annotation.model_dump_json()


def from_json(raw: bytes | str) -> Annotation:
    return Annotation.model_validate_json(raw)


def occurred_ts(annotation: Annotation) -> float:
    return annotation.occurred_at.timestamp()


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
