"""HTTP face of the prompt registry: ``/api/prompts``.

Every write takes the template's lock, asks the pure domain for events, publishes them
to the prompts topic (the record), folds them into Redis and appends each to the
template's hash-chained audit trail (``prompt:<template_id>``). Roles are checked here,
on the server: authors are admins or holders of the ``prompt_owner`` skill, approvers
hold the skill of the role they approve as, auditors only read.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, Field

from hitl_review_api.auth import Caller, Principal
from hitl_review_api.prompts import domain
from hitl_review_api.prompts.ab import compare, winner
from hitl_review_api.prompts.domain import Refused, TemplateState
from hitl_review_api.prompts.store import PromptStore
from hitl_shared.prompts import (
    ApprovalPolicy,
    PromptError,
    PromptEvent,
    Rendered,
    Serving,
    TemplateContent,
    TemplateId,
    TemplateVersion,
    diff,
    record_key,
    render,
)

log = logging.getLogger("hitl.review_api.prompts")
router = APIRouter(prefix="/api/prompts", tags=["prompts"])
AUTHOR_SKILL = "prompt_owner"
TemplatePath = Annotated[
    str, Path(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9._\-]*$")
]
VersionPath = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9]+$")]
ProposalPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-]+$")]
Command = Callable[[TemplateState | None], list[PromptEvent]]


class NewTemplate(BaseModel):
    template_id: TemplateId
    app: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=2000)
    content: TemplateContent
    note: str = Field(default="", max_length=2000)
    policy: ApprovalPolicy | None = Field(default=None, description="admins only")


class NewVersion(BaseModel):
    content: TemplateContent
    note: str = Field(default="", max_length=2000)


class ApprovalIn(BaseModel):
    as_role: str = Field(min_length=1, max_length=64)
    comment: str = Field(default="", max_length=2000)


class RejectionIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class ExperimentIn(BaseModel):
    version: str = Field(min_length=1, max_length=32, pattern=r"^[0-9]+$")
    share: float = Field(gt=0.0, lt=1.0, description="fraction of request keys for the version")
    reason: str = Field(default="", max_length=2000)


class StopIn(BaseModel):
    reason: str = Field(default="", max_length=2000)


class RenderIn(BaseModel):
    values: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    key: str | None = Field(default=None, max_length=512, description="request key for A/B")
    version: str | None = Field(default=None, max_length=32, pattern=r"^[0-9]+$")


def _store(request: Request) -> PromptStore:
    store = getattr(request.app.state, "prompts", None)
    if store is None:
        st = request.app.state
        store = st.prompts = PromptStore(st.redis, st.settings.redis_prefix)
    return store


def _author(who: Principal) -> None:
    if not (who.role == "admin" or (who.role == "reviewer" and AUTHOR_SKILL in who.skills)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"only admins and '{AUTHOR_SKILL}' reviewers change prompts"
        )


def _approver(who: Principal) -> None:
    if who.role == "auditor":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "auditors read, they do not approve")


async def _state(request: Request, template_id: str) -> TemplateState:
    state = await _store(request).get(template_id)
    if state is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no template {template_id!r}")
    return state


async def _execute(
    request: Request, who: Principal, template_id: str, command: Command
) -> tuple[TemplateState, list[PromptEvent]]:
    """Lock, decide, publish, fold, audit: the one write path of the registry."""
    st = request.app.state
    store = _store(request)
    try:
        async with store.locked(template_id):
            before = await store.get(template_id)
            events = command(before)
            for event in events:
                try:
                    await st.broker.publish(
                        event.to_bytes(),
                        st.settings.topics.prompts,
                        key=record_key(template_id).encode(),
                        headers={"content-type": "application/json"},
                    )
                except Exception as exc:
                    log.error("publishing %s failed: %s", event.event_type, exc)
                    raise HTTPException(
                        status.HTTP_503_SERVICE_UNAVAILABLE, "broker unavailable"
                    ) from exc
            after = before
            for event in events:
                after = domain.apply(after, event)
            assert after is not None
            await store.save(after)
            for event in events:
                await st.audit.append(record_key(template_id), _audit_record(who, event))
    except Refused as exc:
        raise HTTPException(exc.status, exc.message) from exc
    return after, events


def _audit_record(who: Principal, event: PromptEvent) -> dict[str, Any]:
    body = event.model_dump(mode="json", exclude={"schema_version", "item_id", "occurred_at"})
    if "version" in body and isinstance(body["version"], dict):
        body["version"] = {
            k: body["version"][k] for k in ("version", "content_hash", "created_by", "note")
        }
    return {"actor": who.reviewer_id, "role": who.role, "action": event.event_type, **body}


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


def _proposal_view(state: TemplateState, proposal: domain.Proposal) -> dict[str, Any]:
    target = state.versions[proposal.target_version]
    current = state.production
    return {
        **proposal.model_dump(mode="json"),
        "missing": domain.missing(state.policy, proposal),
        "required": state.policy.required,
        "current_production": current.version if current else None,
        "diff": diff(_against(state, proposal), target),
    }


def _against(state: TemplateState, proposal: domain.Proposal) -> TemplateVersion | None:
    """What a reviewer compares with: production now, or the one replaced when applied."""
    current = state.production
    if current is not None and current.version != proposal.target_version:
        return current
    base = state.versions.get(proposal.base_version or "")
    return base if base is not None and base.version != proposal.target_version else None


def _summary(state: TemplateState) -> dict[str, Any]:
    return {
        "template_id": state.template_id,
        "app": state.app,
        "description": state.description,
        "labels": state.labels,
        "versions": sorted(state.versions, key=int),
        "experiment": state.experiment.model_dump() if state.experiment else None,
        "open_proposals": sorted(p for p, v in state.proposals.items() if v.status == "open"),
        "policy": state.policy.model_dump(),
    }


# -- reads ------------------------------------------------------------------------------


@router.get("", summary="Every template with its labels and open proposals")
async def list_templates(
    who: Caller, request: Request, app: Annotated[str | None, Query(max_length=128)] = None
) -> list[dict[str, Any]]:
    store = _store(request)
    states = await (store.for_app(app) if app else store.all())
    return [_summary(s) for s in states]


@router.get("/{template_id}", summary="One template: labels, versions, proposals")
async def get_template(template_id: TemplatePath, who: Caller, request: Request) -> dict[str, Any]:
    state = await _state(request, template_id)
    return {
        **_summary(state),
        "proposals": [_proposal_view(state, p) for p in state.proposals.values()],
    }


@router.get("/{template_id}/versions", summary="Every immutable version with its labels")
async def list_versions(
    template_id: TemplatePath, who: Caller, request: Request
) -> list[dict[str, Any]]:
    state = await _state(request, template_id)
    return [
        {**v.model_dump(mode="json"), "labels": state.labels_of(n)}
        for n, v in sorted(state.versions.items(), key=lambda kv: int(kv[0]))
    ]


@router.get("/{template_id}/versions/{version}", summary="One version")
async def get_version(
    template_id: TemplatePath, version: VersionPath, who: Caller, request: Request
) -> TemplateVersion:
    state = await _state(request, template_id)
    if version not in state.versions:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no version {version!r}")
    return state.versions[version]


@router.get("/{template_id}/serving", summary="What an app needs to choose a version locally")
async def serving(template_id: TemplatePath, who: Caller, request: Request) -> Serving:
    return (await _state(request, template_id)).serving()


@router.get("/{template_id}/resolve", summary="The version a request key gets now")
async def resolve(
    template_id: TemplatePath,
    who: Caller,
    request: Request,
    key: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    state = await _state(request, template_id)
    try:
        chosen = state.serving().version_for(key)
    except PromptError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    experiment = state.experiment.experiment_id if state.experiment else None
    return {"template_id": template_id, "version": chosen.version, "experiment": experiment}


@router.post("/{template_id}/render", summary="Render a version with validated variables")
async def render_prompt(
    template_id: TemplatePath, body: RenderIn, who: Caller, request: Request
) -> Rendered:
    state = await _state(request, template_id)
    try:
        if body.version is not None:
            if body.version not in state.versions:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no version {body.version!r}")
            version = state.versions[body.version]
        else:
            version = state.serving().version_for(body.key)
        return render(version, body.values)
    except PromptError as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/{template_id}/proposals/{proposal_id}", summary="A proposal, its diff and status")
async def get_proposal(
    template_id: TemplatePath, proposal_id: ProposalPath, who: Caller, request: Request
) -> dict[str, Any]:
    state = await _state(request, template_id)
    proposal = state.proposals.get(proposal_id)
    if proposal is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no proposal {proposal_id!r}")
    return _proposal_view(state, proposal)


@router.get("/{template_id}/audit", summary="The template's hash-chained change trail")
async def audit_trail(template_id: TemplatePath, who: Caller, request: Request) -> dict[str, Any]:
    entries, verification = await request.app.state.audit.checked(record_key(template_id))
    if not entries:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no trail for {template_id!r}")
    return {"actions": entries, "verification": verification.model_dump()}


@router.get("/{template_id}/ab", summary="A/B comparison of production and the experiment arm")
async def ab_comparison(
    template_id: TemplatePath,
    who: Caller,
    request: Request,
    a: Annotated[str | None, Query(max_length=32, pattern=r"^[0-9]+$")] = None,
    b: Annotated[str | None, Query(max_length=32, pattern=r"^[0-9]+$")] = None,
    min_items: Annotated[int, Query(ge=1, le=100_000)] = 20,
) -> dict[str, Any]:
    state = await _state(request, template_id)
    st = request.app.state
    try:
        return await compare(st.redis, st.settings.redis_prefix, state, a, b, min_items=min_items)
    except Refused as exc:
        raise HTTPException(exc.status, exc.message) from exc


@router.get("/{template_id}/versions/{version}/red-team", summary="Red-team run summaries")
async def red_team_runs(
    template_id: TemplatePath, version: VersionPath, who: Caller, request: Request
) -> list[dict[str, Any]]:
    await _state(request, template_id)
    return await _store(request).red_team_runs(template_id, version)


# -- writes -----------------------------------------------------------------------------


@router.post("", status_code=201, summary="Create a template; version 1 is proposed for review")
async def create_template(body: NewTemplate, who: Caller, request: Request) -> dict[str, Any]:
    _author(who)
    if body.policy is not None and who.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only admins set an approval policy")
    proposal_id = _new_id()
    return await _write_proposal(
        request,
        who,
        body.template_id,
        proposal_id,
        lambda s: domain.create(
            s,
            template_id=body.template_id,
            app=body.app,
            description=body.description,
            content=body.content,
            policy=body.policy or ApprovalPolicy(),
            actor=who.reviewer_id,
            proposal_id=proposal_id,
            note=body.note,
        ),
    )


@router.post("/{template_id}/versions", status_code=201, summary="Propose a new immutable version")
async def propose_version(
    template_id: TemplatePath, body: NewVersion, who: Caller, request: Request
) -> dict[str, Any]:
    _author(who)
    await _state(request, template_id)
    proposal_id = _new_id()
    return await _propose(
        request,
        who,
        template_id,
        proposal_id,
        domain.propose,
        content=body.content,
        note=body.note,
    )


@router.post("/{template_id}/proposals/{proposal_id}/approve", summary="Approve in one role")
async def approve(
    template_id: TemplatePath,
    proposal_id: ProposalPath,
    body: ApprovalIn,
    who: Caller,
    request: Request,
) -> dict[str, Any]:
    return await _review(
        request,
        who,
        template_id,
        proposal_id,
        domain.approve,
        as_role=body.as_role,
        comment=body.comment,
    )


@router.post("/{template_id}/proposals/{proposal_id}/reject", summary="Reject a proposal")
async def reject(
    template_id: TemplatePath,
    proposal_id: ProposalPath,
    body: RejectionIn,
    who: Caller,
    request: Request,
) -> dict[str, Any]:
    return await _review(request, who, template_id, proposal_id, domain.reject, reason=body.reason)


@router.post(
    "/{template_id}/experiments", status_code=201, summary="Propose an A/B split (reviewed)"
)
async def propose_experiment(
    template_id: TemplatePath, body: ExperimentIn, who: Caller, request: Request
) -> dict[str, Any]:
    _author(who)
    proposal_id = _new_id()
    return await _propose(
        request,
        who,
        template_id,
        proposal_id,
        domain.propose_experiment,
        version=body.version,
        share=body.share,
        experiment_id=f"ab-{proposal_id}",
        reason=body.reason,
    )


@router.post("/{template_id}/experiments/stop", summary="Stop the A/B test: production only")
async def stop_experiment(
    template_id: TemplatePath, body: StopIn, who: Caller, request: Request
) -> dict[str, Any]:
    _author(who)
    state, _ = await _execute(
        request,
        who,
        template_id,
        lambda s: domain.stop_experiment(_exists(s), actor=who.reviewer_id, reason=body.reason),
    )
    return _summary(state)


@router.post(
    "/{template_id}/ab/promote", status_code=201, summary="Propose the A/B winner (reviewed)"
)
async def promote_winner(
    template_id: TemplatePath,
    who: Caller,
    request: Request,
    min_items: Annotated[int, Query(ge=1, le=100_000)] = 20,
) -> dict[str, Any]:
    _author(who)
    state = await _state(request, template_id)
    st = request.app.state
    try:
        result = await compare(
            st.redis, st.settings.redis_prefix, state, None, None, min_items=min_items
        )
    except Refused as exc:
        raise HTTPException(exc.status, exc.message) from exc
    best = winner(result)
    if best is None or best == state.labels.get("production"):
        raise HTTPException(status.HTTP_409_CONFLICT, f"no winner to promote: {result['verdict']}")
    proposal_id = _new_id()
    view = await _propose(
        request,
        who,
        template_id,
        proposal_id,
        domain.propose_promotion,
        version=best,
        reason=f"A/B winner: {result['verdict']}",
    )
    return {**view, "comparison": result}


def _exists(state: TemplateState | None) -> TemplateState:
    if state is None:
        raise Refused(404, "no such template")
    return state


async def _write_proposal(
    request: Request, who: Principal, template_id: str, proposal_id: str, command: Command
) -> dict[str, Any]:
    """Run a command that opens or changes ``proposal_id``; answer with that proposal's view."""
    state, _ = await _execute(request, who, template_id, command)
    return _proposal_view(state, state.proposals[proposal_id])


async def _propose(
    request: Request,
    who: Principal,
    template_id: str,
    proposal_id: str,
    make: Callable[..., list[PromptEvent]],
    **fields: Any,
) -> dict[str, Any]:
    """An author's proposal ``proposal_id`` on an existing template, in the caller's name."""
    return await _write_proposal(
        request,
        who,
        template_id,
        proposal_id,
        lambda s: make(_exists(s), actor=who.reviewer_id, proposal_id=proposal_id, **fields),
    )


async def _review(
    request: Request,
    who: Principal,
    template_id: str,
    proposal_id: str,
    decide: Callable[..., list[PromptEvent]],
    **decision: Any,
) -> dict[str, Any]:
    """An approver's decision on a proposal (approve or reject) in the caller's name."""
    _approver(who)
    return await _write_proposal(
        request,
        who,
        template_id,
        proposal_id,
        lambda s: decide(
            _exists(s),
            proposal_id=proposal_id,
            reviewer_id=who.reviewer_id,
            skills=who.skills,
            **decision,
        ),
    )
