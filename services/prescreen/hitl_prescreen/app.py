"""Prescreen wiring: ``llm.outputs`` -> detectors -> ``llm.screened``."""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from pydantic import TypeAdapter
from redis.asyncio import Redis

from hitl_prescreen.config import PrescreenConfig, load_config
from hitl_prescreen.screener import Screener
from hitl_shared.events import LLMOutput
from hitl_shared.kafka import BatchHop, Outgoing
from hitl_shared.runtime import run_consumer_service
from hitl_shared.settings import Settings

GROUP_ID = "hitl-prescreen"


async def wire(
    settings: Settings,
    broker: KafkaBroker,
    redis: Redis,
    provider: TracerProvider,
    config: PrescreenConfig | None = None,
) -> BatchHop:
    topics = settings.topics
    screener = Screener(config or load_config(), redis, settings.redis_prefix)

    async def handle(output: LLMOutput) -> list[Outgoing]:
        return [Outgoing(topics.llm_screened, await screener.handle(output))]

    hop = BatchHop(
        broker,
        settings,
        provider.get_tracer("hitl.prescreen"),
        topic=topics.llm_outputs,
        group_id=GROUP_ID,
        decoder=TypeAdapter(LLMOutput),
        handler=handle,
    )
    hop.screener = screener  # type: ignore[attr-defined]  # for tests and benchmarks
    return hop


def main() -> None:
    settings = Settings(service_name="prescreen")
    asyncio.run(run_consumer_service(settings, wire, needs_redis=True))


if __name__ == "__main__":
    main()
