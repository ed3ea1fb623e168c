"""Feedback wiring: review decisions, releases and user feedback -> Redis state,
knowledge base, OpenTelemetry metrics and policy updates for the router."""

from __future__ import annotations

import asyncio
from typing import Any

from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from pydantic import TypeAdapter
from redis.asyncio import Redis

from hitl_feedback.annotations import UNKNOWN, annotate, prompt_of
from hitl_feedback.config import FeedbackConfig
from hitl_feedback.metrics import catch_value
from hitl_feedback.otel import FeedbackInstruments, configure_metrics
from hitl_feedback.sampling import due, policy_update
from hitl_feedback.store import FeedbackStore
from hitl_shared.events import RELEASED_ADAPTER, Release, Retraction, ReviewDecision, UserFeedback
from hitl_shared.kafka import BatchHop, Handler, Outgoing
from hitl_shared.runtime import run_consumer_service
from hitl_shared.settings import Settings

GROUP_ID = "hitl-feedback"


async def wire(
    settings: Settings,
    broker: KafkaBroker,
    redis: Redis,
    provider: TracerProvider,
    config: FeedbackConfig | None = None,
) -> list[BatchHop]:
    config = config or FeedbackConfig()
    topics = settings.topics
    tracer = provider.get_tracer("hitl.feedback")
    store = FeedbackStore(redis, settings.redis_prefix)
    instruments = FeedbackInstruments()

    async def on_decision(decision: ReviewDecision) -> list[Outgoing]:
        annotation = annotate(decision, prompt_of(await store.screened_json(decision.item_id)))
        ingested = await store.ingest(annotation, config.window)
        await store.remember_edge_case(annotation)  # idempotent; also on redelivery
        if ingested.new:
            instruments.record_decision(annotation, catch_value(annotation, config))
        evidence = ingested.evidence
        if evidence is None or annotation.tier is None or not due(evidence, config):
            return []
        if UNKNOWN in (annotation.app, annotation.use_case):
            return []  # no segment to steer
        update = policy_update(
            annotation.app, annotation.use_case, annotation.tier, evidence, config
        )
        instruments.record_policy(update)
        return [Outgoing(topics.policy_updates, update)]

    async def on_user_feedback(feedback: UserFeedback) -> list[Outgoing]:
        if await store.count_user_feedback(feedback):
            instruments.record_user_feedback(feedback)
        return []

    async def on_release(event: Release | Retraction) -> list[Outgoing]:
        await store.count_release(event)
        return []

    def hop(topic: str, group: str, decoder: TypeAdapter[Any], handler: Handler) -> BatchHop:
        return BatchHop(
            broker,
            settings,
            tracer,
            topic=topic,
            group_id=group,
            decoder=decoder,
            handler=handler,
        )

    return [
        hop(topics.review_decisions, GROUP_ID, TypeAdapter(ReviewDecision), on_decision),
        hop(topics.user_feedback, f"{GROUP_ID}-user", TypeAdapter(UserFeedback), on_user_feedback),
        hop(topics.llm_released, f"{GROUP_ID}-releases", RELEASED_ADAPTER, on_release),
    ]


def main() -> None:
    settings = Settings(service_name="feedback")
    configure_metrics(settings)
    asyncio.run(run_consumer_service(settings, wire))


if __name__ == "__main__":
    main()
