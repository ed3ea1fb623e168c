"""What the benchmarks share: a fresh broker and Redis per scenario, the services as child
processes, a raw passthrough hop as the baseline, percentiles and the result files.

Imported by the scripts in this folder (``from common import ...``): run them as
``.venv/bin/python bench/<name>.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from hitl_shared.devservers import start_redis, start_tansu
from hitl_shared.kafka import ensure_topics
from hitl_shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
R = TypeVar("R")


class Keyed(Protocol):
    item_id: str

    def to_bytes(self) -> bytes: ...


def demo_records() -> list[dict[str, Any]]:
    """The demo LLM outputs (``demo/sample_outputs.jsonl``) as raw dicts."""
    lines = (ROOT / "demo" / "sample_outputs.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def quantile(values: list[float], q: float) -> float:
    """The value at rank ``int(q * n)`` of the sorted values (capped at the last)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def p50_p99_ms(latencies: list[float]) -> tuple[float, float]:
    """Median and 99th percentile (rank ``int(0.99 * (n - 1))``) of latencies in seconds, in ms."""
    ordered = sorted(latencies)
    return 1000 * statistics.median(ordered), 1000 * ordered[int(0.99 * (len(ordered) - 1))]


def write_result(name: str, text: str) -> None:
    """Print the table and keep it as ``bench/results/<name>.txt``."""
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.txt").write_text(text + "\n", encoding="utf-8")


@asynccontextmanager
async def fresh_stack(**settings: Any) -> AsyncIterator[Settings]:
    """A fresh Tansu broker and redis-server with the topics made (the broker slows as a
    partition grows); ``settings`` override the defaults (4 partitions)."""
    broker = start_tansu()
    redis = start_redis()
    try:
        made = Settings(
            kafka_bootstrap=broker.url, redis_url=redis.url, **{"partitions": 4, **settings}
        )
        await ensure_topics(made)
        yield made
    finally:
        redis.stop()
        broker.stop()


async def on_fresh_stack(run: Callable[[Settings], Awaitable[R]]) -> R:
    """Run one scenario on a fresh stack with the default settings."""
    async with fresh_stack() as settings:
        return await run(settings)


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a service process pointed at ``settings``' broker and Redis."""
    return {
        **os.environ,
        "HITL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "HITL_REDIS_URL": settings.redis_url,
        "HITL_LOG_LEVEL": "WARNING",
        **extra,
    }


@contextmanager
def services(
    settings: Settings,
    modules: Iterable[str],
    env: dict[str, str] | None = None,
    stop_timeout: float = 15,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The services (``python -m <module>``) as child processes; terminated on exit."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", module], env=service_env(settings, **(env or {})), cwd=ROOT
        )
        for module in modules
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=stop_timeout)


async def passthrough_hop(
    bootstrap: str,
    source: str,
    target: str,
    stop: asyncio.Event,
    transform: Callable[[bytes], bytes] | None = None,
    **producer: Any,
) -> None:
    """The baseline: consume a batch, forward every record (through ``transform``), await
    acks, commit."""
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"pass-{source}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
    )
    sender = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, **producer)
    await consumer.start()
    await sender.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=500)
            futures = [
                await sender.send(target, transform(r.value) if transform else r.value, key=r.key)
                for records in batch.values()
                for r in records
            ]
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit()
    finally:
        await consumer.stop()
        await sender.stop()


@asynccontextmanager
async def raw_hops(
    settings: Settings,
    join_seconds: float,
    last: Callable[[bytes], bytes] | None = None,
    **producer: Any,
) -> AsyncIterator[None]:
    """Two passthrough hops outputs -> screened -> released, the pipeline's shape without
    services (``last`` transforms what the second one forwards); waits ``join_seconds``
    for the group joins."""
    topics = settings.topics
    stop = asyncio.Event()
    hops = [
        asyncio.create_task(
            passthrough_hop(settings.kafka_bootstrap, source, target, stop, transform, **producer)
        )
        for source, target, transform in (
            (topics.llm_outputs, topics.llm_screened, None),
            (topics.llm_screened, topics.llm_released, last),
        )
    ]
    await asyncio.sleep(join_seconds)
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*hops)


async def preload(
    bootstrap: str, topic: str, events: Iterable[Keyed], linger_ms: int, max_batch_size: int
) -> None:
    """Publish a backlog (keyed by item id) and wait for every ack."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=False,
        linger_ms=linger_ms,
        max_batch_size=max_batch_size,
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, e.to_bytes(), key=e.item_id.encode()) for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
