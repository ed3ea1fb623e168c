"""Versioned event models for every topic of the flow.

Every event is frozen, carries ``schema_version``, ``event_id``, ``item_id`` (the
idempotency key end to end) and an aware UTC ``occurred_at``. Unknown future fields are
ignored so older consumers keep working; a missing required field is rejected by
pydantic with a message that names it. A newer ``schema_version`` than this code knows
is rejected too: the consumer dead-letters it instead of guessing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

ItemId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Tier = Literal["low", "medium", "high", "critical"]
ReviewerLevel = Literal["L1", "L2", "L3"]
Severity = Literal["info", "low", "medium", "high", "critical"]
MetadataValue = str | int | float | bool | None

TAXONOMY = (
    "factual_error",
    "reasoning_flaw",
    "style",
    "alignment_safety",
    "pii",
    "policy_violation",
    "other",
)
TaxonomyLabel = Literal[
    "factual_error",
    "reasoning_flaw",
    "style",
    "alignment_safety",
    "pii",
    "policy_violation",
    "other",
]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _new_event_id() -> str:
    return str(uuid.uuid4())


class Event(BaseModel):
    """Common envelope of every event on every topic."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_max_length=1_000_000)

    schema_version: Literal[1] = 1
    event_id: str = Field(default_factory=_new_event_id, min_length=1, max_length=64)
    item_id: ItemId
    occurred_at: AwareDatetime = Field(default_factory=utc_now)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class ContextDocument(BaseModel):
    """A retrieved document the model was given (RAG context)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    doc_id: str = Field(min_length=1, max_length=256)
    text: str
    source: str | None = None


class LLMOutput(Event):
    """What an app publishes for every model answer (topic ``llm.outputs``)."""

    event_type: Literal["llm.output"] = "llm.output"
    app: str = Field(min_length=1, max_length=128)
    use_case: str = Field(min_length=1, max_length=128)
    content_category: str = Field(default="general", max_length=128)
    prompt: str
    prompt_template_id: str | None = Field(default=None, max_length=128)
    prompt_template_version: str | None = Field(default=None, max_length=64)
    model: str = Field(min_length=1, max_length=128)
    output_text: str
    context: tuple[ContextDocument, ...] = ()
    confidence: Probability | None = None
    token_logprobs: tuple[float, ...] | None = None
    user_segment: str = Field(default="general", max_length=128)
    user_vulnerability: Literal["none", "low", "elevated", "high"] = "none"
    language: str = Field(default="en", max_length=16)
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)


class Flag(BaseModel):
    """One detector finding, anchored to a character span of the output text."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    detector: str = Field(min_length=1, max_length=64)
    category: str = Field(min_length=1, max_length=64)
    severity: Severity
    score: Probability
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    explanation: str = Field(max_length=500)

    @model_validator(mode="after")
    def _span_is_ordered(self) -> Flag:
        if self.end < self.start:
            raise ValueError(f"flag span end {self.end} is before start {self.start}")
        return self


class ScreenedOutput(Event):
    """The LLM output with prescreen flags and scores (topic ``llm.screened``)."""

    event_type: Literal["llm.screened"] = "llm.screened"
    output: LLMOutput
    flags: tuple[Flag, ...] = ()
    scores: dict[str, Probability] = Field(default_factory=dict)
    detector_errors: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _same_item(self) -> ScreenedOutput:
        if self.output.item_id != self.item_id:
            raise ValueError("screened item_id differs from its output's item_id")
        return self


Action = Literal["release", "hold", "release_and_review", "block"]
DeliveryMode = Literal["sequential", "parallel", "adaptive", "hybrid"]


class RoutingDecision(Event):
    """Why the router did what it did with an item (topic ``routing.decisions``)."""

    event_type: Literal["routing.decision"] = "routing.decision"
    app: str
    use_case: str
    tier: Tier
    risk_score: Probability
    mode: DeliveryMode
    action: Action
    review_probability: Probability
    sampled: bool
    rules_fired: tuple[str, ...] = ()
    policy_version: str
    required_level: ReviewerLevel = "L1"
    approvals_required: int = Field(default=1, ge=0, le=5)


class ReviewTask(Event):
    """A unit of human work, queued in Redis and recorded on ``review.tasks``."""

    event_type: Literal["review.task"] = "review.task"
    task_id: str = Field(min_length=1, max_length=64)
    tier: Tier
    required_level: ReviewerLevel
    skills: tuple[str, ...] = ()
    language: str = "en"
    approvals_required: int = Field(default=1, ge=1, le=5)
    priority: float
    sla_deadline: AwareDatetime
    mode: DeliveryMode
    screened: ScreenedOutput
    decision: RoutingDecision
    trace_context: dict[str, str] = Field(
        default_factory=dict,
        description="W3C context of the routing span, so the review joins the item's trace",
    )


Verdict = Literal["approve", "edit", "reject", "escalate"]


class ReviewDecision(Event):
    """One reviewer's verdict on a task (topic ``review.decisions``)."""

    event_type: Literal["review.decision"] = "review.decision"
    task_id: str
    reviewer_id: str = Field(min_length=1, max_length=128)
    reviewer_level: ReviewerLevel
    verdict: Verdict
    original_text: str
    edited_text: str | None = None
    reason: str | None = Field(default=None, max_length=2000)
    labels: tuple[TaxonomyLabel, ...] = ()
    severity: Severity | None = None
    notes: str | None = Field(default=None, max_length=5000)
    time_spent_s: float = Field(default=0.0, ge=0.0)
    final: bool = Field(
        default=True, description="True when this decision completes the task's approvals"
    )
    app: str | None = None
    use_case: str | None = None
    tier: Tier | None = None
    model: str | None = None
    prompt_template_id: str | None = None
    prompt_template_version: str | None = None

    @model_validator(mode="after")
    def _edit_has_text(self) -> ReviewDecision:
        if self.verdict == "edit" and not self.edited_text:
            raise ValueError("an 'edit' verdict needs edited_text")
        if self.verdict in ("reject", "escalate") and not self.reason:
            raise ValueError(f"a '{self.verdict}' verdict needs a reason")
        return self


Outcome = Literal["auto_released", "approved", "edited", "rejected", "blocked"]


class Release(Event):
    """The text an app may show, and how it came to be (topic ``llm.released``)."""

    event_type: Literal["llm.release"] = "llm.release"
    app: str
    outcome: Outcome
    text: str
    reason: str | None = None
    policy_version: str
    decided_by: tuple[str, ...] = ()


class Retraction(Event):
    """Withdraws a text already released in parallel mode (topic ``llm.released``)."""

    event_type: Literal["llm.retraction"] = "llm.retraction"
    app: str
    reason: str
    replacement_text: str | None = None
    decided_by: tuple[str, ...] = ()


class UserFeedback(Event):
    """Explicit ratings / reports and implicit signals from apps (topic ``feedback.user``)."""

    event_type: Literal["feedback.user"] = "feedback.user"
    app: str
    kind: Literal["explicit", "implicit"]
    rating: int | None = Field(default=None, ge=1, le=5)
    report: TaxonomyLabel | None = None
    signal: Literal["regenerate", "copy", "abandon", "thumbs_up", "thumbs_down"] | None = None
    comment: str | None = Field(default=None, max_length=5000)


class PolicyUpdate(Event):
    """A new review rate for one segment, computed by the feedback loop.

    ``item_id`` names the segment (``app:use_case:tier``) so updates for one segment
    share a partition and arrive in order; ``sequence`` orders them regardless.
    """

    event_type: Literal["policy.update"] = "policy.update"
    app: str
    use_case: str
    tier: Tier
    review_rate: Probability
    sequence: int = Field(ge=0)
    method: str
    observed_items: int = Field(ge=0)
    observed_errors: int = Field(ge=0)


class DeadLetter(BaseModel):
    """A message a consumer could not handle, kept with its raw bytes and the reason."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: Literal[1] = 1
    event_type: Literal["dead.letter"] = "dead.letter"
    event_id: str = Field(default_factory=_new_event_id)
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    service: str
    original_topic: str
    original_partition: int
    original_offset: int
    original_key_b64: str | None
    original_headers: dict[str, str]
    raw_b64: str
    exc_class: str
    exc_msg: str
    item_id: str | None = None


ReleasedEvent = Annotated[Release | Retraction, Field(discriminator="event_type")]
RELEASED_ADAPTER: TypeAdapter[Release | Retraction] = TypeAdapter(ReleasedEvent)


def adapter_for(model: type[Any]) -> TypeAdapter[Any]:
    """The decoder for a topic's payload: strict JSON, errors name the field."""
    return TypeAdapter(model)
