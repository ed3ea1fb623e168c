"""The registry's rules, pure: commands turn into events, events fold into state.

A command checks the current state and returns the events it would publish (or raises
``Refused`` with an HTTP status); ``apply`` folds one event into a template's state.
``apply`` is idempotent (a redelivered event changes nothing), so the Redis state can be
rebuilt at any time by folding the prompts topic from its start.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hitl_shared.prompts import (
    ApprovalPolicy,
    Experiment,
    ExperimentStopped,
    PromptEvent,
    ProposalApplied,
    ProposalApproved,
    ProposalOpened,
    ProposalRejected,
    Serving,
    TemplateContent,
    TemplateCreated,
    TemplateVersion,
    VersionAdded,
    new_version,
    record_key,
)

Status = Literal["open", "applied", "rejected", "superseded"]


class Refused(Exception):
    """A command the rules refuse; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Approval(BaseModel):
    model_config = ConfigDict(frozen=True)

    reviewer_id: str
    as_role: str
    comment: str = ""


class Proposal(BaseModel):
    """A change waiting for (or done with) its approvals."""

    proposal_id: str
    action: Literal["promote", "experiment"]
    target_version: str
    experiment: Experiment | None = None
    proposer: str
    reason: str = ""
    base_version: str | None = None  # production when proposed: what the diff is against
    status: Status = "open"
    approvals: list[Approval] = Field(default_factory=list)
    rejected_by: str | None = None
    rejection_reason: str | None = None


class TemplateState(BaseModel):
    template_id: str
    app: str
    description: str = ""
    created_by: str
    policy: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    versions: dict[str, TemplateVersion] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)  # production / candidate -> version
    proposals: dict[str, Proposal] = Field(default_factory=dict)
    experiment: Experiment | None = None
    history: list[str] = Field(default_factory=list)  # experiment ids ever started

    @property
    def production(self) -> TemplateVersion | None:
        version = self.labels.get("production")
        return self.versions.get(version) if version else None

    def serving(self) -> Serving:
        wanted = set(self.experiment.split) if self.experiment else set()
        return Serving(
            template_id=self.template_id,
            production=self.production,
            experiment=self.experiment,
            versions={v: self.versions[v] for v in sorted(wanted) if v in self.versions},
        )

    def next_version(self) -> str:
        return str(max((int(v) for v in self.versions), default=0) + 1)

    def labels_of(self, version: str) -> list[str]:
        return sorted(label for label, v in self.labels.items() if v == version)


# -- approvals ----------------------------------------------------------------------------


def missing(policy: ApprovalPolicy, proposal: Proposal) -> dict[str, int]:
    """Approvals still needed per role (empty when the change may take effect)."""
    left = dict(policy.required)
    for approval in proposal.approvals:
        if left.get(approval.as_role, 0) > 0:
            left[approval.as_role] -= 1
    return {role: n for role, n in left.items() if n > 0}


def _open(state: TemplateState, proposal_id: str) -> Proposal:
    proposal = state.proposals.get(proposal_id)
    if proposal is None:
        raise Refused(404, f"no proposal {proposal_id!r} on {state.template_id!r}")
    if proposal.status != "open":
        raise Refused(409, f"proposal {proposal_id!r} is {proposal.status}")
    return proposal


# -- commands -----------------------------------------------------------------------------


def create(
    state: TemplateState | None,
    *,
    template_id: str,
    app: str,
    description: str,
    content: TemplateContent,
    policy: ApprovalPolicy,
    actor: str,
    proposal_id: str,
    note: str = "",
) -> list[PromptEvent]:
    """A new template: its first version, proposed for production like any other change."""
    if state is not None:
        raise Refused(409, f"template {template_id!r} exists")
    key = record_key(template_id)
    version = new_version(template_id, "1", content, actor, note)
    return [
        TemplateCreated(
            item_id=key,
            template_id=template_id,
            actor=actor,
            app=app,
            description=description,
            policy=policy,
        ),
        VersionAdded(item_id=key, template_id=template_id, actor=actor, version=version),
        _proposal(template_id, actor, proposal_id, "promote", "1", None, note),
    ]


def propose(
    state: TemplateState, *, content: TemplateContent, actor: str, proposal_id: str, note: str = ""
) -> list[PromptEvent]:
    """A new immutable version and the proposal to make it production."""
    wanted = content.content_hash()
    for existing in state.versions.values():
        if existing.content_hash == wanted:
            raise Refused(409, f"identical to version {existing.version}; propose that instead")
    number = state.next_version()
    version = new_version(state.template_id, number, content, actor, note)
    key = record_key(state.template_id)
    return [
        VersionAdded(item_id=key, template_id=state.template_id, actor=actor, version=version),
        _proposal(state.template_id, actor, proposal_id, "promote", number, None, note),
    ]


def propose_promotion(
    state: TemplateState, *, version: str, actor: str, proposal_id: str, reason: str
) -> list[PromptEvent]:
    """Make an existing version production (e.g. an A/B winner): reviewed like any change."""
    if version not in state.versions:
        raise Refused(404, f"no version {version!r}")
    if state.labels.get("production") == version:
        raise Refused(409, f"version {version} is production already")
    return [_proposal(state.template_id, actor, proposal_id, "promote", version, None, reason)]


def propose_experiment(
    state: TemplateState,
    *,
    version: str,
    share: float,
    actor: str,
    proposal_id: str,
    experiment_id: str,
    reason: str = "",
) -> list[PromptEvent]:
    """Send ``share`` of request keys to ``version``, the rest to production."""
    production = state.labels.get("production")
    if production is None:
        raise Refused(409, "an experiment needs a production version to compare against")
    if version not in state.versions:
        raise Refused(404, f"no version {version!r}")
    if version == production:
        raise Refused(409, "the candidate is production already")
    if state.experiment is not None:
        raise Refused(409, f"experiment {state.experiment.experiment_id} is running; stop it")
    if experiment_id in state.history:
        raise Refused(409, f"experiment id {experiment_id!r} was used before")
    experiment = Experiment(
        experiment_id=experiment_id, split={production: 1.0 - share, version: share}
    )
    return [
        _proposal(state.template_id, actor, proposal_id, "experiment", version, experiment, reason)
    ]


def _proposal(
    template_id: str,
    actor: str,
    proposal_id: str,
    action: Literal["promote", "experiment"],
    version: str,
    experiment: Experiment | None,
    reason: str,
) -> ProposalOpened:
    return ProposalOpened(
        item_id=record_key(template_id),
        template_id=template_id,
        actor=actor,
        proposal_id=proposal_id,
        action=action,
        target_version=version,
        experiment=experiment,
        reason=reason,
    )


def approve(
    state: TemplateState,
    *,
    proposal_id: str,
    reviewer_id: str,
    skills: Sequence[str],
    as_role: str,
    comment: str = "",
) -> list[PromptEvent]:
    """One approval; when it completes the policy, the change is applied with it."""
    proposal = _open(state, proposal_id)
    policy = state.policy
    if as_role not in policy.required:
        raise Refused(422, f"role {as_role!r} is not asked for; needs {sorted(policy.required)}")
    if as_role not in skills:
        raise Refused(403, f"{reviewer_id} does not hold the {as_role!r} role")
    if any(a.reviewer_id == reviewer_id for a in proposal.approvals):
        raise Refused(409, f"{reviewer_id} approved this already: approvers must be distinct")
    if reviewer_id == proposal.proposer and not policy.proposer_may_approve:
        raise Refused(403, "the proposer may not approve their own change")
    if missing(policy, proposal).get(as_role, 0) == 0:
        raise Refused(409, f"the {as_role!r} approvals are complete; another role is needed")
    key = record_key(state.template_id)
    approved = ProposalApproved(
        item_id=key,
        template_id=state.template_id,
        actor=reviewer_id,
        proposal_id=proposal_id,
        as_role=as_role,
        comment=comment,
    )
    events: list[PromptEvent] = [approved]
    after = proposal.model_copy(
        update={
            "approvals": [*proposal.approvals, Approval(reviewer_id=reviewer_id, as_role=as_role)]
        }
    )
    if not missing(policy, after):
        if proposal.action == "experiment" and state.experiment is not None:
            raise Refused(409, "another experiment started meanwhile; stop it first")
        events.append(
            ProposalApplied(
                item_id=key,
                template_id=state.template_id,
                actor=reviewer_id,
                proposal_id=proposal_id,
            )
        )
    return events


def reject(
    state: TemplateState, *, proposal_id: str, reviewer_id: str, skills: Sequence[str], reason: str
) -> list[PromptEvent]:
    """Any holder of a required role may stop a change."""
    _open(state, proposal_id)
    if not set(skills) & set(state.policy.required):
        raise Refused(403, f"rejecting needs one of the roles {sorted(state.policy.required)}")
    return [
        ProposalRejected(
            item_id=record_key(state.template_id),
            template_id=state.template_id,
            actor=reviewer_id,
            proposal_id=proposal_id,
            reason=reason,
        )
    ]


def stop_experiment(state: TemplateState, *, actor: str, reason: str) -> list[PromptEvent]:
    if state.experiment is None:
        raise Refused(409, "no experiment is running")
    return [
        ExperimentStopped(
            item_id=record_key(state.template_id),
            template_id=state.template_id,
            actor=actor,
            experiment_id=state.experiment.experiment_id,
            reason=reason,
        )
    ]


# -- the fold -----------------------------------------------------------------------------


def apply(state: TemplateState | None, event: PromptEvent) -> TemplateState | None:
    """The state after ``event``; replaying an event already folded changes nothing."""
    if isinstance(event, TemplateCreated):
        if state is not None:
            return state
        return TemplateState(
            template_id=event.template_id,
            app=event.app,
            description=event.description,
            created_by=event.actor,
            policy=event.policy,
        )
    if state is None:
        return None  # an event of a template whose creation we never saw: ignore it
    state = state.model_copy(deep=True)
    if isinstance(event, VersionAdded):
        if event.version.version not in state.versions:
            state.versions[event.version.version] = event.version
            state.labels["candidate"] = event.version.version
    elif isinstance(event, ProposalOpened):
        if event.proposal_id not in state.proposals:
            state.proposals[event.proposal_id] = Proposal(
                proposal_id=event.proposal_id,
                action=event.action,
                target_version=event.target_version,
                experiment=event.experiment,
                proposer=event.actor,
                reason=event.reason,
                base_version=state.labels.get("production"),
            )
            if event.action == "promote":
                state.labels["candidate"] = event.target_version
    elif isinstance(event, ProposalApproved):
        proposal = state.proposals.get(event.proposal_id)
        fresh = proposal and all(a.reviewer_id != event.actor for a in proposal.approvals)
        if proposal and proposal.status == "open" and fresh:
            proposal.approvals.append(
                Approval(reviewer_id=event.actor, as_role=event.as_role, comment=event.comment)
            )
    elif isinstance(event, ProposalRejected):
        proposal = state.proposals.get(event.proposal_id)
        if proposal and proposal.status == "open":
            proposal.status = "rejected"
            proposal.rejected_by, proposal.rejection_reason = event.actor, event.reason
            _drop_candidate(state, proposal.target_version)
    elif isinstance(event, ProposalApplied):
        proposal = state.proposals.get(event.proposal_id)
        if proposal and proposal.status == "open":
            proposal.status = "applied"
            _take_effect(state, proposal)
    elif (
        isinstance(event, ExperimentStopped)
        and state.experiment
        and state.experiment.experiment_id == event.experiment_id
    ):
        state.experiment = None
    return state


def _take_effect(state: TemplateState, proposal: Proposal) -> None:
    if proposal.action == "experiment":
        state.experiment = proposal.experiment
        if proposal.experiment is not None:
            state.history.append(proposal.experiment.experiment_id)
        return
    state.labels["production"] = proposal.target_version
    state.experiment = None  # a promotion ends any running A/B test
    for other in state.proposals.values():
        if other.status == "open":
            other.status = "superseded"  # proposed against an older production
    state.labels.pop("candidate", None)


def _drop_candidate(state: TemplateState, version: str) -> None:
    still_proposed = any(
        p.status == "open" and p.action == "promote" and p.target_version == version
        for p in state.proposals.values()
    )
    if state.labels.get("candidate") == version and not still_proposed:
        del state.labels["candidate"]


def fold(events: Iterable[PromptEvent]) -> dict[str, TemplateState]:
    """Every template's state from its events, in topic order."""
    states: dict[str, TemplateState] = {}
    for event in events:
        folded = apply(states.get(event.template_id), event)
        if folded is not None:
            states[event.template_id] = folded
    return states
