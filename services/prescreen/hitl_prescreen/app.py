"""Prescreen wiring: ``llm.outputs`` -> detectors -> ``llm.screened``."""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from pydantic import TypeAdapter
from redis.asyncio import Redis

from hitl_prescreen.domain import screen
from hitl_shared.events import LLMOutput
from hitl_shared.kafka import BatchHop, Outgoing
from hitl_shared.runtime import run_consumer_service
from hitl_shared.settings import Settings

GROUP_ID = "hitl-prescreen"


async def wire(
    settings: Settings, broker: KafkaBroker, redis: Redis, provider: TracerProvider
) -> BatchHop:
    topics = settings.topics

    async def handle(output: LLMOutput) -> list[Outgoing]:
        return [Outgoing(topics.llm_screened, screen(output))]

    return BatchHop(
        broker,
        settings,
        provider.get_tracer("hitl.prescreen"),
        topic=topics.llm_outputs,
        group_id=GROUP_ID,
        decoder=TypeAdapter(LLMOutput),
        handler=handle,
    )


def main() -> None:
    settings = Settings(service_name="prescreen")
    asyncio.run(run_consumer_service(settings, wire, needs_redis=False))


if __name__ == "__main__":
    main()
