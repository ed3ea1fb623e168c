"""Builders for review-api tests: tasks queued the way the router queues them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from hitl_shared.events import Flag, ReviewTask, RoutingDecision, ScreenedOutput, utc_now
from hitl_shared.queue import GENERAL_SKILL, ReviewQueue, bucket_name, score_for
from tests.factories import llm_output

APPROVALS = {"low": 1, "medium": 1, "high": 1, "critical": 2}
LEVEL = {"low": "L1", "medium": "L1", "high": "L2", "critical": "L2"}


def make_task(
    item_id: str,
    *,
    tier: str = "medium",
    text: str = "Your card 4111 1111 1111 1111 is on file.",
    flags: tuple[Flag, ...] | None = None,
    required_level: str | None = None,
    approvals: int | None = None,
    **output: Any,
) -> ReviewTask:
    out = llm_output(item_id, output_text=text, **output)
    if flags is None:
        start = text.find("4111")
        flags = (
            (
                Flag(
                    detector="pii",
                    category="payment_card",
                    severity="critical",
                    score=0.99,
                    start=start,
                    end=start + 19,
                    explanation="Luhn-valid card number",
                ),
            )
            if start >= 0
            else ()
        )
    screened = ScreenedOutput(item_id=item_id, output=out, flags=flags, scores={"pii": 0.99})
    level = required_level or LEVEL[tier]
    decision = RoutingDecision(
        item_id=item_id,
        app=out.app,
        use_case=out.use_case,
        tier=tier,  # type: ignore[arg-type]
        risk_score=0.9,
        mode="sequential",
        action="hold",
        review_probability=1.0,
        sampled=True,
        rules_fired=("flag:payment_card",),
        policy_version="test-1",
        required_level=level,  # type: ignore[arg-type]
        approvals_required=approvals or APPROVALS[tier],
    )
    deadline = utc_now() + timedelta(minutes=15)
    return ReviewTask(
        item_id=item_id,
        task_id=f"task-{item_id}",
        tier=tier,  # type: ignore[arg-type]
        required_level=level,  # type: ignore[arg-type]
        skills=(GENERAL_SKILL,),
        language=out.language,
        approvals_required=approvals or APPROVALS[tier],
        priority=float(score_for(tier, deadline)),
        sla_deadline=deadline,
        mode="sequential",
        screened=screened,
        decision=decision,
    )


async def enqueue(redis: Redis, namespace: str, task: ReviewTask) -> None:
    """Queue the task and write the router's item record, as the router does."""
    queue = ReviewQueue(redis, namespace)
    await redis.hset(
        f"{queue.ns}:item:{task.item_id}",
        mapping={
            "decision": task.decision.model_dump_json(),
            "screened": task.screened.model_dump_json(),
        },
    )
    await queue.enqueue(
        task.task_id,
        bucket=bucket_name(task.required_level, GENERAL_SKILL, task.language),
        score=int(task.priority),
        payload=task.model_dump_json(),
    )
