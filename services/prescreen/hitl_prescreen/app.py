"""Prescreen wiring: ``llm.outputs`` -> detectors -> ``llm.screened``."""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span
from pydantic import TypeAdapter
from redis.asyncio import Redis

from hitl_prescreen.config import PrescreenConfig, PrescreenEnv, load_config
from hitl_prescreen.screener import Screener
from hitl_shared.events import LLMOutput
from hitl_shared.kafka import BatchHop, BulkResult, Outgoing
from hitl_shared.runtime import run_consumer_service
from hitl_shared.settings import Settings

GROUP_ID = "hitl-prescreen"
POOLED_SLICES = 2  # measured: 3 or 4 slices gain nothing more (bench/prescreen_throughput.py)


async def wire(
    settings: Settings,
    broker: KafkaBroker,
    redis: Redis,
    provider: TracerProvider,
    config: PrescreenConfig | None = None,
    workers: int | None = None,
) -> BatchHop:
    """The prescreen hop; ``workers`` defaults to ``HITL_PRESCREEN_WORKERS`` (see config)."""
    topics = settings.topics
    env = PrescreenEnv()
    screener = Screener(
        config or load_config(env.config),
        redis,
        settings.redis_prefix,
        workers=env.worker_count() if workers is None else workers,
    )
    await screener.start()

    async def handle(output: LLMOutput) -> list[Outgoing]:
        return [Outgoing(topics.llm_screened, await screener.handle(output))]

    async def handle_batch(outputs: list[LLMOutput], spans: list[Span]) -> list[BulkResult]:
        screened = await screener.screen_many(outputs)
        return [[Outgoing(topics.llm_screened, s)] for s in screened]

    hop = BatchHop(
        broker,
        settings,
        provider.get_tracer("hitl.prescreen"),
        topic=topics.llm_outputs,
        group_id=GROUP_ID,
        decoder=TypeAdapter(LLMOutput),
        handler=handle,
        bulk=handle_batch,
        # with workers, the consumer publishes one half while the workers screen the other
        bulk_slices=POOLED_SLICES if screener.pool is not None else 1,
    )
    hop.on_close.append(screener.close)  # a worker stuck in a detector must not hold the exit
    hop.screener = screener  # type: ignore[attr-defined]  # for tests and benchmarks
    return hop


def main() -> None:
    settings = Settings(service_name="prescreen")
    asyncio.run(run_consumer_service(settings, wire, needs_redis=True))


if __name__ == "__main__":
    main()
