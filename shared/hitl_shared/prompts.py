"""Prompt templates: parts, typed variables, immutable versions, rendering, A/B assignment.

Shared by the review API (which keeps the registry) and the app-side catalog (which
renders and assigns locally), so both agree on what a version says and which version a
request key gets. Placeholders are ``{{ name }}``, substituted by a regex, never by
``str.format``: a variable value can neither reach attributes nor inject placeholders.
Every change to the registry is one of the events below on the prompts topic, keyed by
template id so one template's history stays in order on one partition.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from hitl_shared.events import Event

TemplateId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9._\-]*$")]
VersionId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9]+$")]
VarName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Line = Annotated[str, Field(min_length=1, max_length=2000)]
Label = Literal["production", "candidate"]
VarType = Literal["str", "int", "float", "bool", "enum"]
PART_TITLES = (
    ("role", "Role"),
    ("context", "Context"),
    ("task", "Task"),
    ("constraints", "Constraints"),
    ("required_disclosures", "Required disclosures"),
    ("prohibited_categories", "Prohibited content categories"),
)
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_VALUE_CHARS = 20_000
RED_TEAM_USE_CASE = "red-team"  # red-team outputs' own segment, never an A/B arm


class PromptError(ValueError):
    """A template or a rendering request the registry refuses; the message says why."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Parts(_Frozen):
    """The standard template structure: role, context, task, constraints, guardrails."""

    role: str = Field(min_length=1, max_length=4000)
    context: str = Field(default="", max_length=20_000)
    task: str = Field(min_length=1, max_length=20_000)
    constraints: tuple[Line, ...] = Field(default=(), max_length=50)
    required_disclosures: tuple[Line, ...] = Field(default=(), max_length=20)
    prohibited_categories: tuple[Line, ...] = Field(default=(), max_length=50)


class Variable(_Frozen):
    """A typed slot a caller fills at render time."""

    name: VarName
    type: VarType = "str"
    required: bool = True
    default: str | int | float | bool | None = None
    choices: tuple[str, ...] = ()
    max_length: int = Field(default=2000, ge=1, le=MAX_VALUE_CHARS)
    description: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _enum_has_choices(self) -> Variable:
        if self.type == "enum" and not self.choices:
            raise ValueError(f"enum variable {self.name!r} needs choices")
        return self


class TemplateContent(_Frozen):
    """What a version says; its hash identifies identical content across versions."""

    parts: Parts
    variables: tuple[Variable, ...] = Field(default=(), max_length=50)

    @model_validator(mode="after")
    def _placeholders_declared(self) -> TemplateContent:
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise ValueError("variable names must be unique")
        used = placeholders(self.parts)
        undeclared = sorted(used - set(names))
        if undeclared:
            raise ValueError(f"placeholders without a declared variable: {undeclared}")
        return self

    def content_hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class TemplateVersion(_Frozen):
    """One immutable version of a template; a change is always a new version."""

    template_id: TemplateId
    version: VersionId
    content: TemplateContent
    content_hash: str = Field(min_length=64, max_length=64)
    created_by: str = Field(min_length=1, max_length=128)
    note: str = Field(default="", max_length=2000)


class Rendered(_Frozen):
    """A rendered prompt and the version it came from (to stamp onto outputs)."""

    template_id: str
    version: str
    text: str


def placeholders(parts: Parts) -> set[str]:
    found: set[str] = set()
    for _, text in part_texts(parts):
        found.update(PLACEHOLDER.findall(text))
    return found


def part_texts(parts: Parts) -> list[tuple[str, str]]:
    """Each non-empty part as (title, text); list parts become one bullet a line."""
    out: list[tuple[str, str]] = []
    for field, title in PART_TITLES:
        value = getattr(parts, field)
        text = "\n".join(f"- {line}" for line in value) if isinstance(value, tuple) else value
        if text:
            out.append((title, text))
    return out


def layout(parts: Parts) -> str:
    """The parts as one text: what a reviewer reads and what a diff compares."""
    return "\n\n".join(f"## {title}\n{text}" for title, text in part_texts(parts))


def _coerce(variable: Variable, value: object) -> str:
    kind = variable.type
    if kind == "bool":
        if not isinstance(value, bool):
            raise PromptError(f"variable {variable.name!r} must be a bool")
        return "yes" if value else "no"
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise PromptError(f"variable {variable.name!r} must be an int")
        return str(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PromptError(f"variable {variable.name!r} must be a number")
        return repr(float(value))
    if not isinstance(value, str):
        raise PromptError(f"variable {variable.name!r} must be a string")
    if len(value) > variable.max_length:
        raise PromptError(f"variable {variable.name!r} is longer than {variable.max_length}")
    if kind == "enum" and value not in variable.choices:
        raise PromptError(f"variable {variable.name!r} must be one of {list(variable.choices)}")
    return value


def bind(content: TemplateContent, values: Mapping[str, object]) -> dict[str, str]:
    """Validated, stringified values for every variable; unknown or missing ones refused."""
    declared = {v.name: v for v in content.variables}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise PromptError(f"unknown variables: {unknown}")
    bound: dict[str, str] = {}
    for name, variable in declared.items():
        if name in values and values[name] is not None:
            bound[name] = _coerce(variable, values[name])
        elif variable.default is not None:
            bound[name] = _coerce(variable, variable.default)
        elif variable.required:
            raise PromptError(f"missing required variable {name!r}")
        else:
            bound[name] = ""
    return bound


def render(version: TemplateVersion, values: Mapping[str, object]) -> Rendered:
    """The version's text with every placeholder replaced in one pass (values stay inert)."""
    bound = bind(version.content, values)
    text = PLACEHOLDER.sub(lambda m: bound[m.group(1)], layout(version.content.parts))
    return Rendered(template_id=version.template_id, version=version.version, text=text)


def diff(old: TemplateVersion | None, new: TemplateVersion) -> str:
    """Unified diff of the laid-out parts, old production (or nothing) against new."""
    before = layout(old.content.parts).splitlines() if old else []
    after = layout(new.content.parts).splitlines()
    variables_before = _variable_lines(old.content) if old else []
    return "\n".join(
        difflib.unified_diff(
            before + variables_before,
            after + _variable_lines(new.content),
            fromfile=f"{new.template_id}@{old.version}" if old else "(none)",
            tofile=f"{new.template_id}@{new.version}",
            lineterm="",
        )
    )


def _variable_lines(content: TemplateContent) -> list[str]:
    if not content.variables:
        return []
    lines = ["", "## Variables"]
    for v in content.variables:
        extra = f" choices={list(v.choices)}" if v.choices else ""
        lines.append(f"- {v.name}: {v.type}{'' if v.required else ' (optional)'}{extra}")
    return lines


# -- A/B assignment ---------------------------------------------------------------------


def unit_interval(key: str, salt: str) -> float:
    """A stable, uniform number in [0, 1) for a request key (SHA-256, not Python's hash)."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(key: str, split: Mapping[str, float], salt: str) -> str:
    """The version a request key gets under ``split`` (weights summing to 1)."""
    if not split:
        raise PromptError("empty split")
    point = unit_interval(key, salt)
    cumulative = 0.0
    ordered = sorted(split.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else kv[0])
    for version, weight in ordered:
        cumulative += weight
        if point < cumulative:
            return version
    return ordered[-1][0]


class Experiment(_Frozen):
    """A running A/B test: the split between versions and the salt of its assignment."""

    experiment_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")
    split: dict[VersionId, Annotated[float, Field(gt=0.0, lt=1.0)]]

    @model_validator(mode="after")
    def _sums_to_one(self) -> Experiment:
        if len(self.split) < 2:
            raise ValueError("a split needs at least two versions")
        if abs(sum(self.split.values()) - 1.0) > 1e-9:
            raise ValueError("split weights must sum to 1")
        return self


class Serving(_Frozen):
    """What an app needs to pick and render a version locally for any request key."""

    template_id: str
    production: TemplateVersion | None
    experiment: Experiment | None = None
    versions: dict[str, TemplateVersion] = Field(default_factory=dict)

    def version_for(self, key: str | None) -> TemplateVersion:
        if self.experiment is not None and key is not None:
            chosen = assign(key, self.experiment.split, self.experiment.experiment_id)
            if chosen in self.versions:
                return self.versions[chosen]
        if self.production is None:
            raise PromptError(f"template {self.template_id!r} has no production version")
        return self.production


# -- events on the prompts topic --------------------------------------------------------

Action = Literal["promote", "experiment"]
ApproverRole = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")]


class ApprovalPolicy(_Frozen):
    """How many distinct approvers of which roles (reviewer skills) a change needs."""

    required: dict[ApproverRole, Annotated[int, Field(ge=1, le=5)]] = Field(
        default_factory=lambda: {"prompt_owner": 1, "compliance": 1}
    )
    proposer_may_approve: bool = False

    @model_validator(mode="after")
    def _at_least_two(self) -> ApprovalPolicy:
        if sum(self.required.values()) < 2:
            raise ValueError("a prompt change needs at least two approvals")
        return self


class PromptEvent(Event):
    """Envelope of every prompts-topic event; ``item_id`` is ``prompt:<template_id>``."""

    template_id: TemplateId
    actor: str = Field(min_length=1, max_length=128)


class TemplateCreated(PromptEvent):
    event_type: Literal["prompt.template_created"] = "prompt.template_created"
    app: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=2000)
    policy: ApprovalPolicy = Field(default_factory=ApprovalPolicy)


class VersionAdded(PromptEvent):
    event_type: Literal["prompt.version_added"] = "prompt.version_added"
    version: TemplateVersion


class ProposalOpened(PromptEvent):
    event_type: Literal["prompt.proposal_opened"] = "prompt.proposal_opened"
    proposal_id: str = Field(min_length=1, max_length=64)
    action: Action
    target_version: VersionId
    experiment: Experiment | None = None
    reason: str = Field(default="", max_length=2000)


class ProposalApproved(PromptEvent):
    event_type: Literal["prompt.proposal_approved"] = "prompt.proposal_approved"
    proposal_id: str
    as_role: ApproverRole
    comment: str = Field(default="", max_length=2000)


class ProposalRejected(PromptEvent):
    event_type: Literal["prompt.proposal_rejected"] = "prompt.proposal_rejected"
    proposal_id: str
    reason: str = Field(min_length=1, max_length=2000)


class ProposalApplied(PromptEvent):
    """The approvals are complete: the change takes effect (labels / experiment)."""

    event_type: Literal["prompt.proposal_applied"] = "prompt.proposal_applied"
    proposal_id: str


class ExperimentStopped(PromptEvent):
    """Back to production only; stopping is always safe, so it needs no review."""

    event_type: Literal["prompt.experiment_stopped"] = "prompt.experiment_stopped"
    experiment_id: str
    reason: str = Field(default="", max_length=2000)


AnyPromptEvent = Annotated[
    TemplateCreated
    | VersionAdded
    | ProposalOpened
    | ProposalApproved
    | ProposalRejected
    | ProposalApplied
    | ExperimentStopped,
    Field(discriminator="event_type"),
]
PROMPT_EVENTS: TypeAdapter[AnyPromptEvent] = TypeAdapter(AnyPromptEvent)


def record_key(template_id: str) -> str:
    """The event's item id and Kafka key: one template, one partition, one order."""
    return f"prompt:{template_id}"


def new_version(
    template_id: str, version: str, content: TemplateContent, created_by: str, note: str = ""
) -> TemplateVersion:
    return TemplateVersion(
        template_id=template_id,
        version=version,
        content=content,
        content_hash=content.content_hash(),
        created_by=created_by,
        note=note,
    )
