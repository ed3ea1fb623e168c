"""Feedback wiring: review decisions -> segment counts in Redis -> policy updates."""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from pydantic import TypeAdapter
from redis.asyncio import Redis

from hitl_feedback.domain import UPDATE_EVERY, SegmentCounts, is_error, next_review_rate
from hitl_shared.events import PolicyUpdate, ReviewDecision, UserFeedback
from hitl_shared.kafka import BatchHop, Outgoing
from hitl_shared.runtime import run_consumer_service
from hitl_shared.settings import Settings

GROUP_ID = "hitl-feedback"


async def wire(
    settings: Settings, broker: KafkaBroker, redis: Redis, provider: TracerProvider
) -> list[BatchHop]:
    topics = settings.topics
    tracer = provider.get_tracer("hitl.feedback")
    ns = "{" + settings.redis_prefix + "}"

    async def on_decision(verdict: ReviewDecision) -> list[Outgoing]:
        if not verdict.final or verdict.verdict == "escalate":
            return []
        if not await redis.set(f"{ns}:fb:seen:{verdict.event_id}", 1, nx=True, ex=7 * 86400):
            return []  # redelivered: already counted
        segment = f"{verdict.app}:{verdict.use_case}:{verdict.tier}"
        key = f"{ns}:fb:segment:{segment}"
        reviewed = await redis.hincrby(key, "reviewed", 1)
        errors = await redis.hincrby(key, "errors", 1 if is_error(verdict.verdict) else 0)
        if reviewed % UPDATE_EVERY or verdict.tier is None:
            return []
        counts = SegmentCounts(reviewed=reviewed, errors=errors)
        update = PolicyUpdate(
            item_id=segment.replace(" ", "_"),
            app=verdict.app or "unknown",
            use_case=verdict.use_case or "unknown",
            tier=verdict.tier,
            review_rate=next_review_rate(verdict.tier, counts),
            sequence=await redis.incr(f"{ns}:fb:seq:{segment}"),
            method="beta-posterior-mean x3, tier floor",
            observed_items=reviewed,
            observed_errors=errors,
        )
        return [Outgoing(topics.policy_updates, update)]

    async def on_user_feedback(feedback: UserFeedback) -> list[Outgoing]:
        if await redis.set(f"{ns}:fb:seen:{feedback.event_id}", 1, nx=True, ex=7 * 86400):
            await redis.hincrby(f"{ns}:fb:user:{feedback.app}", feedback.signal or feedback.kind, 1)
        return []

    return [
        BatchHop(
            broker,
            settings,
            tracer,
            topic=topics.review_decisions,
            group_id=GROUP_ID,
            decoder=TypeAdapter(ReviewDecision),
            handler=on_decision,
        ),
        BatchHop(
            broker,
            settings,
            tracer,
            topic=topics.user_feedback,
            group_id=f"{GROUP_ID}-user",
            decoder=TypeAdapter(UserFeedback),
            handler=on_user_feedback,
        ),
    ]


def main() -> None:
    asyncio.run(run_consumer_service(Settings(service_name="feedback"), wire))


if __name__ == "__main__":
    main()
