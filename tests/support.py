"""Helpers for integration tests: run a service's wiring in-process, read topics."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

from hitl_shared.kafka import build_broker, ensure_topics
from hitl_shared.runtime import hops_of
from hitl_shared.settings import Settings

Wiring = Callable[..., Awaitable[Any]]
Records = list[dict[str, Any]]


async def isolated_settings(kafka_bootstrap: str, redis_url: str, namespace: str) -> Settings:
    """Settings on their own topics (``<namespace>.*``, created here) and Redis namespace."""
    made = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=f"{namespace}.",
        redis_prefix=namespace,
        partitions=2,
        session_timeout_ms=6000,
        fetch_max_wait_ms=20,
    )
    await ensure_topics(made)
    return made


@asynccontextmanager
async def running(
    settings: Settings, wire: Wiring, redis: Redis, *, exporter: InMemorySpanExporter | None = None
) -> AsyncIterator[Any]:
    """A service's real wiring on the real broker, started in this process."""
    provider = TracerProvider()
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    broker = build_broker(settings, provider)
    hops = await wire(settings, broker, redis, provider)
    await broker.start()
    try:
        yield hops
    finally:
        await broker.stop()
        for hop in hops_of(hops):
            hop.close()


async def produce(settings: Settings, topic: str, *values: bytes, key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=False
    )
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def by_item(item_id: str) -> Callable[[Records], bool]:
    """``done`` for :func:`read_until`: a record of ``item_id`` has arrived."""
    return lambda records: any(r.get("item_id") == item_id for r in records)


@asynccontextmanager
async def _reader(settings: Settings, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A group-less consumer of ``topic`` from its start."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def _next_records(consumer: AIOKafkaConsumer, *, headers: bool = True) -> Records:
    """The JSON records of one fetch (waits up to 200 ms), with their ``_headers``."""
    batch = await consumer.getmany(timeout_ms=200)
    records = []
    for messages in batch.values():
        for message in messages:
            value = json.loads(message.value)
            if headers:
                value["_headers"] = {k: v.decode() for k, v in message.headers or ()}
            records.append(value)
    return records


async def read_until(
    settings: Settings,
    topic: str,
    done: Callable[[Records], bool],
    *,
    timeout: float = 30.0,
    quiet: float = 0.0,
    failure: str = "condition not met",
) -> Records:
    """Every JSON record of ``topic`` from the start until ``done(records)`` holds and
    nothing more came for ``quiet`` seconds (so a late duplicate would be seen)."""
    records: Records = []
    async with _reader(settings, topic) as consumer:
        try:
            async with asyncio.timeout(timeout):
                last = time.monotonic()
                while not done(records) or time.monotonic() - last < quiet:
                    if fetched := await _next_records(consumer):
                        records.extend(fetched)
                        last = time.monotonic()
        except TimeoutError as exc:
            raise AssertionError(
                f"{topic}: {failure} in {timeout}s; got {records!r:.2000}"
            ) from exc
    return records


async def read_all(settings: Settings, topic: str, *, idle: float = 2.0) -> Records:
    """Every JSON record of ``topic`` until nothing new has arrived for ``idle`` seconds."""
    records: Records = []
    async with _reader(settings, topic) as consumer:
        quiet_since = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - quiet_since < idle:
            if fetched := await _next_records(consumer, headers=False):
                records.extend(fetched)
                quiet_since = asyncio.get_running_loop().time()
    return records
