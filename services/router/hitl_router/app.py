"""Router wiring: screened outputs -> decisions, releases and queued review tasks;
review decisions -> releases or retractions."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from faststream.kafka import KafkaBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from pydantic import TypeAdapter
from redis.asyncio import Redis

from hitl_router.domain import decide
from hitl_router.policy import PolicySource
from hitl_router.release import auto_release, release_after_review, retraction_after_review
from hitl_shared.events import (
    RELEASED_ADAPTER,
    Release,
    Retraction,
    ReviewDecision,
    ReviewTask,
    RoutingDecision,
    ScreenedOutput,
    utc_now,
)
from hitl_shared.kafka import BatchHop, Outgoing
from hitl_shared.queue import GENERAL_SKILL, ReviewQueue, bucket_name, score_for
from hitl_shared.runtime import run_consumer_service
from hitl_shared.settings import Settings
from hitl_shared.telemetry import ATTR_ACTION, ATTR_TIER

GROUP_ID = "hitl-router"
SLA = {
    "critical": timedelta(minutes=15),
    "high": timedelta(hours=1),
    "medium": timedelta(hours=4),
    "low": timedelta(hours=24),
}


class RouterState:
    """Redis-held routing record per item, and the release-once marker."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.ns = "{" + namespace + "}"

    async def remember(self, decision: RoutingDecision, screened: ScreenedOutput) -> None:
        await self.redis.hset(
            f"{self.ns}:item:{decision.item_id}",
            mapping={
                "decision": decision.model_dump_json(),
                "screened": screened.model_dump_json(),
            },
        )

    async def routing(self, item_id: str) -> RoutingDecision | None:
        raw = await self.redis.hget(f"{self.ns}:item:{item_id}", "decision")
        return RoutingDecision.model_validate_json(raw) if raw else None

    async def once(self, kind: str, item_id: str, payload: str) -> str:
        """First writer wins; a redelivery gets the stored payload back (same event id)."""
        key = f"{self.ns}:{kind}:{item_id}"
        await self.redis.set(key, payload, nx=True)
        stored = await self.redis.get(key)
        return stored.decode() if isinstance(stored, bytes) else str(stored)


def review_task(decision: RoutingDecision, screened: ScreenedOutput) -> ReviewTask:
    now = utc_now()
    return ReviewTask(
        item_id=decision.item_id,
        task_id=f"task-{decision.item_id}",
        tier=decision.tier,
        required_level=decision.required_level,
        skills=(GENERAL_SKILL,),
        language=screened.output.language,
        approvals_required=max(1, decision.approvals_required),
        priority=float(score_for(decision.tier, now + SLA[decision.tier])),
        sla_deadline=now + SLA[decision.tier],
        mode=decision.mode,
        screened=screened,
        decision=decision,
    )


async def wire(
    settings: Settings, broker: KafkaBroker, redis: Redis, provider: TracerProvider
) -> list[BatchHop]:
    topics = settings.topics
    tracer = provider.get_tracer("hitl.router")
    source = PolicySource(settings.policy_file)
    state = RouterState(redis, settings.redis_prefix)
    queue = ReviewQueue(redis, settings.redis_prefix)

    async def on_screened(screened: ScreenedOutput) -> list[Outgoing]:
        decision = decide(screened, source.policy)
        span = trace.get_current_span()
        span.set_attribute(ATTR_TIER, decision.tier)
        span.set_attribute(ATTR_ACTION, decision.action)
        await state.remember(decision, screened)
        out = [Outgoing(topics.routing_decisions, decision)]
        if decision.action in ("release", "release_and_review"):
            payload = await state.once(
                "release",
                decision.item_id,
                auto_release(decision, screened.output.output_text).model_dump_json(),
            )
            out.append(Outgoing(topics.llm_released, _release_from(payload)))
        if decision.action in ("hold", "release_and_review", "block"):
            task = review_task(decision, screened)
            await queue.enqueue(
                task.task_id,
                bucket=bucket_name(task.required_level, GENERAL_SKILL, task.language),
                score=int(task.priority),
                payload=task.model_dump_json(),
            )
            out.append(Outgoing(topics.review_tasks, task))
        return out

    async def on_decision(verdict: ReviewDecision) -> list[Outgoing]:
        if not verdict.final or verdict.verdict == "escalate":
            return []
        routing = await state.routing(verdict.item_id)
        if routing is None:
            raise LookupError(f"no routing record for item {verdict.item_id}")
        if routing.action == "release_and_review":
            retraction = retraction_after_review(routing, verdict)
            if retraction is None:
                return []
            payload = await state.once("retraction", verdict.item_id, retraction.model_dump_json())
            return [Outgoing(topics.llm_released, _release_from(payload))]
        payload = await state.once(
            "release",
            verdict.item_id,
            release_after_review(
                routing, verdict, source.policy.fallback_for(routing.app)
            ).model_dump_json(),
        )
        return [Outgoing(topics.llm_released, _release_from(payload))]

    return [
        BatchHop(
            broker,
            settings,
            tracer,
            topic=topics.llm_screened,
            group_id=GROUP_ID,
            decoder=TypeAdapter(ScreenedOutput),
            handler=on_screened,
        ),
        BatchHop(
            broker,
            settings,
            tracer,
            topic=topics.review_decisions,
            group_id=f"{GROUP_ID}-decisions",
            decoder=TypeAdapter(ReviewDecision),
            handler=on_decision,
        ),
    ]


def _release_from(payload: str) -> Release | Retraction:
    return RELEASED_ADAPTER.validate_json(payload)


def main() -> None:
    asyncio.run(run_consumer_service(Settings(service_name="router"), wire))


if __name__ == "__main__":
    main()
