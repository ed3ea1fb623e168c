"""Helpers for integration tests: run a service's wiring in-process, read topics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

from hitl_shared.kafka import build_broker
from hitl_shared.settings import Settings

Wiring = Callable[..., Awaitable[Any]]


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


async def read_until(
    settings: Settings,
    topic: str,
    done: Callable[[list[dict[str, Any]]], bool],
    *,
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """Every JSON record of ``topic`` from the start until ``done(records)`` holds."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while not done(records):
                batch = await consumer.getmany(timeout_ms=200)
                for messages in batch.values():
                    for message in messages:
                        value = json.loads(message.value)
                        value["_headers"] = {k: v.decode() for k, v in message.headers or ()}
                        records.append(value)
    except TimeoutError as exc:
        raise AssertionError(
            f"{topic}: condition not met in {timeout}s; got {records!r:.2000}"
        ) from exc
    finally:
        await consumer.stop()
    return records


async def read_all(settings: Settings, topic: str, *, idle: float = 2.0) -> list[dict[str, Any]]:
    """Every JSON record of ``topic`` until nothing new has arrived for ``idle`` seconds."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    records: list[dict[str, Any]] = []
    quiet_since = asyncio.get_running_loop().time()
    try:
        while asyncio.get_running_loop().time() - quiet_since < idle:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                for message in messages:
                    records.append(json.loads(message.value))
                    quiet_since = asyncio.get_running_loop().time()
    finally:
        await consumer.stop()
    return records
