"""Reviewer work: claim, heartbeat, release a claim, decide.

A decision is checked against the reviewer's lease (fencing token) and is idempotent
per claim: the first submit for ``(task, fence)`` wins (SET NX), a retry gets the stored
answer back and publishes nothing new, and the event id is derived from the claim so a
consumer also sees the same id twice at worst.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from opentelemetry import trace
from pydantic import BaseModel, Field, ValidationError
from redis.asyncio import Redis

from hitl_review_api.auth import Caller, Principal, reviewer_only
from hitl_review_api.highlight import segments
from hitl_review_api.ratelimit import RateLimiter, too_many
from hitl_review_api.review import approvals_needed, current_text, outcome
from hitl_review_api.routes_items import review_item_key
from hitl_shared.events import ReviewDecision, ReviewTask, Severity, TaxonomyLabel
from hitl_shared.queue import ReviewQueue
from hitl_shared.settings import Settings
from hitl_shared.telemetry import (
    ATTR_ACTION,
    ATTR_ITEM_ID,
    ATTR_REVIEWER_LEVEL,
    ATTR_TIER,
    continue_trace,
    record_wait,
)

log = logging.getLogger("hitl.review_api.tasks")
router = APIRouter(prefix="/api/tasks", tags=["tasks"])
_DECISION_NS = uuid.UUID("0b5e7f9e-4a43-4f37-9a39-5a3f7c6a1c21")
KEEP_SECONDS = 7 * 86400
QUARANTINE_BUCKET = "quarantine:invalid:payload"  # not a level: no reviewer reads it
QUARANTINE_TRIES = 5
TaskId = Annotated[str, Path(min_length=1, max_length=160, pattern=r"^[A-Za-z0-9._:\-]+$")]


class DecisionIn(BaseModel):
    fence: str = Field(min_length=1, max_length=32, pattern=r"^[0-9]+$")
    verdict: Literal["approve", "edit", "reject", "escalate"]
    edited_text: str | None = Field(default=None, max_length=200_000)
    reason: str | None = Field(default=None, max_length=2000)
    labels: tuple[TaxonomyLabel, ...] = Field(default=(), max_length=7)
    severity: Severity | None = None
    notes: str | None = Field(default=None, max_length=5000)
    time_spent_s: float = Field(default=0.0, ge=0.0, le=86_400)


class FenceIn(BaseModel):
    fence: str = Field(min_length=1, max_length=32, pattern=r"^[0-9]+$")


class DecisionOut(BaseModel):
    status: Literal["recorded", "already_recorded"]
    event_id: str
    final: bool
    next_step: str
    verdict: str


def _state(request: Request) -> Any:
    return request.app.state


def decisions_key(queue: ReviewQueue, task_id: str) -> str:
    return f"{queue.ns}:task-decisions:{task_id}"


def _actor(who: Principal) -> dict[str, Any]:
    return {"actor": who.reviewer_id, "role": who.role, "level": who.level}


@router.post(
    "/claim",
    responses={204: {"description": "nothing to review for you right now"}},
    summary="Lease the most urgent task this reviewer is qualified for",
)
async def claim(who: Caller, request: Request) -> Response:
    reviewer = reviewer_only(who)
    st = _state(request)
    settings: Settings = st.settings
    for _ in range(QUARANTINE_TRIES):
        got = await st.queue.claim(reviewer, lease_seconds=settings.lease_seconds)
        if got is None:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        try:
            task = ReviewTask.model_validate_json(got.payload)
            break
        except ValidationError as exc:
            # an unreadable task must not come back to every reviewer in turn: park it
            # where no reviewer reads and the overview shows it to admins
            log.error("task %s has an unreadable payload, quarantined: %s", got.task_id, exc)
            await st.queue.requeue(
                got.task_id, reviewer.reviewer_id, got.fence, bucket=QUARANTINE_BUCKET
            )
    else:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "queue holds unreadable tasks")
    tags = {ATTR_TIER: task.tier, ATTR_REVIEWER_LEVEL: reviewer.level}
    record_wait(
        "review.tasks wait",
        task.trace_context,
        item_id=task.item_id,
        since=task.occurred_at,
        attributes=tags,
    )
    with continue_trace("review claim", task.trace_context, item_id=task.item_id, attributes=tags):
        pass
    output = task.screened.output
    shown = review_item_key(st.queue.ns, task.item_id)
    claimed = {**_actor(who), "action": "claim", "task_id": got.task_id, "fence": got.fence}
    async with st.redis.pipeline(transaction=False) as pipe:
        pipe.lrange(decisions_key(st.queue, got.task_id), 0, -1)
        kb_lists = st.knowledge.lookup(pipe, task)
        pipe.hsetnx(shown, "task", got.payload)
        pipe.expire(shown, KEEP_SECONDS * 4)
        entry = await st.audit.stage(pipe, task.item_id, claimed)
        results = await pipe.execute()
    await st.audit.settle(task.item_id, claimed, entry, results[-1])
    prior = [ReviewDecision.model_validate_json(r) for r in results[0]]
    body = {
        "task_id": got.task_id,
        "fence": got.fence,
        "lease_expires_ms": got.lease_expires_ms,
        "lease_seconds": settings.lease_seconds,
        "segments": [s.model_dump() for s in segments(output.output_text, task.screened.flags)],
        "current_text": current_text(task, prior),
        "approvals_needed": approvals_needed(task),
        "previous_decisions": [d.model_dump(mode="json") for d in prior],
        "similar_cases": st.knowledge.similar(task, results[1 : 1 + kb_lists]),
    }
    # the task goes out as the queue stored it (validated above), not re-serialized
    content = '{"task":' + got.payload + "," + json.dumps(body, ensure_ascii=False)[1:]
    return Response(content=content, media_type="application/json")


@router.post("/{task_id}/heartbeat", summary="Extend the lease on a claimed task")
async def heartbeat(
    task_id: TaskId, body: FenceIn, who: Caller, request: Request
) -> dict[str, int]:
    reviewer = reviewer_only(who)
    st = _state(request)
    expires = await st.queue.renew(
        task_id, reviewer.reviewer_id, body.fence, lease_seconds=st.settings.lease_seconds
    )
    if not expires:
        raise HTTPException(status.HTTP_409_CONFLICT, "lease not held by you")
    return {"lease_expires_ms": expires}


@router.post("/{task_id}/release", summary="Give a claimed task back to its queue, undecided")
async def release(task_id: TaskId, body: FenceIn, who: Caller, request: Request) -> dict[str, str]:
    reviewer = reviewer_only(who)
    st = _state(request)
    raw = await st.queue.task(task_id)
    if not await st.queue.requeue(task_id, reviewer.reviewer_id, body.fence):
        raise HTTPException(status.HTTP_409_CONFLICT, "lease not held by you")
    if raw.get("payload"):
        item_id = ReviewTask.model_validate_json(raw["payload"]).item_id
        await st.audit.append(
            item_id, {**_actor(who), "action": "release_claim", "task_id": task_id}
        )
    return {"status": "released"}


@router.post(
    "/{task_id}/decision",
    responses={409: {"description": "lease not held by you"}},
    summary="Approve, edit, reject or escalate a claimed task (idempotent per claim)",
)
async def decide(task_id: TaskId, body: DecisionIn, who: Caller, request: Request) -> DecisionOut:
    reviewer = reviewer_only(who)
    st = _state(request)
    queue: ReviewQueue = st.queue
    redis: Redis = st.redis
    settings: Settings = st.settings
    limiter: RateLimiter = request.app.state.limiter
    if await limiter.hit("decisions", reviewer.reviewer_id) > settings.decisions_per_minute:
        raise too_many("decisions from this reviewer")
    done_key = f"{queue.ns}:decided:{task_id}:{body.fence}"
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(done_key)
        pipe.hgetall(f"{queue.ns}:task:{task_id}")
        pipe.lrange(decisions_key(queue, task_id), 0, -1)
        previous, raw_task, raw_prior = await pipe.execute()
    if previous is not None:
        return DecisionOut(**{**json.loads(previous), "status": "already_recorded"})
    if not await queue.renew(
        task_id, reviewer.reviewer_id, body.fence, lease_seconds=settings.lease_seconds
    ):
        raise HTTPException(status.HTTP_409_CONFLICT, "lease not held by you")
    held = {_text(k): _text(v) for k, v in raw_task.items()}
    if not held.get("payload"):
        raise HTTPException(status.HTTP_409_CONFLICT, "task no longer exists")
    task = ReviewTask.model_validate_json(held["payload"])
    prior = [ReviewDecision.model_validate_json(r) for r in raw_prior]
    before = current_text(task, prior)
    result = outcome(
        task,
        prior,
        level=reviewer.level,
        verdict=body.verdict,
        edited_text=body.edited_text,
        bucket=held.get("bucket", ""),
    )
    output = task.screened.output
    try:
        decision = ReviewDecision(
            event_id=str(uuid.uuid5(_DECISION_NS, f"{task_id}:{body.fence}")),
            item_id=task.item_id,
            task_id=task_id,
            reviewer_id=reviewer.reviewer_id,
            reviewer_level=reviewer.level,
            original_text=output.output_text,
            final=result.final,
            app=output.app,
            use_case=output.use_case,
            tier=task.tier,
            model=output.model,
            prompt_template_id=output.prompt_template_id,
            prompt_template_version=output.prompt_template_version,
            **{
                **body.model_dump(exclude={"fence"}),
                "verdict": result.verdict,
                "edited_text": result.edited_text,
            },
        )
    except ValidationError as exc:
        raise HTTPException(
            422,
            "; ".join(e["msg"] for e in exc.errors()),
        ) from exc
    answer = DecisionOut(
        status="recorded",
        event_id=decision.event_id,
        final=result.final,
        next_step=result.next_step,
        verdict=result.verdict,
    )
    if not await redis.set(done_key, answer.model_dump_json(), nx=True, ex=KEEP_SECONDS):
        stored = await redis.get(done_key)
        return DecisionOut(**{**json.loads(stored or "{}"), "status": "already_recorded"})
    span = trace.get_current_span()
    span.set_attribute(ATTR_ITEM_ID, task.item_id)
    span.set_attribute(ATTR_REVIEWER_LEVEL, reviewer.level)
    try:
        with continue_trace(
            "review decision",
            task.trace_context,
            item_id=task.item_id,
            attributes={
                ATTR_TIER: task.tier,
                ATTR_ACTION: decision.verdict,
                ATTR_REVIEWER_LEVEL: reviewer.level,
            },
        ):
            await st.broker.publish(
                decision.to_bytes(),
                settings.topics.review_decisions,
                key=task.item_id.encode(),
                headers={"content-type": "application/json"},
            )
    except Exception as exc:
        await redis.delete(done_key)  # let the reviewer retry the same submit
        log.error("publishing decision for %s failed: %s", task_id, exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "broker unavailable") from exc
    # the decision list is written before the task can be claimed again (second approver)
    await _record(st, who, task, decision, before, result.next_step)
    if result.final:
        await queue.complete(task_id, reviewer.reviewer_id, body.fence)
    else:
        await queue.requeue(
            task_id, reviewer.reviewer_id, body.fence, decided=True, bucket=result.requeue_bucket
        )
    return answer


async def _record(
    st: Any,
    who: Principal,
    task: ReviewTask,
    decision: ReviewDecision,
    before: str,
    next_step: str,
) -> None:
    """Audit entry, the task's decision list, workload counters and the knowledge base."""
    queue: ReviewQueue = st.queue
    redis: Redis = st.redis
    approved = decision.verdict in ("approve", "edit")
    after = (decision.edited_text or before) if approved else None
    decided = {
        **_actor(who),
        "action": "decision",
        "task_id": decision.task_id,
        "event_id": decision.event_id,
        "verdict": decision.verdict,
        "final": decision.final,
        "next_step": next_step,
        "before": before,
        "after": after,
        "labels": list(decision.labels),
        "severity": decision.severity,
        "reason": decision.reason,
        "notes": decision.notes,
        "time_spent_s": decision.time_spent_s,
    }
    key = decisions_key(queue, decision.task_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.rpush(key, decision.model_dump_json())
        pipe.expire(key, KEEP_SECONDS)
        pipe.hincrby(f"{queue.ns}:workload:{who.reviewer_id}", "decisions", 1)
        pipe.hincrby(f"{queue.ns}:workload:{who.reviewer_id}", decision.verdict, 1)
        pipe.hincrbyfloat(
            f"{queue.ns}:workload:{who.reviewer_id}", "time_spent_s", decision.time_spent_s
        )
        if decision.final:
            st.knowledge.remember(pipe, task, decision)
        entry = await st.audit.stage(pipe, task.item_id, decided)
        results = await pipe.execute()
    await st.audit.settle(task.item_id, decided, entry, results[-1])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
