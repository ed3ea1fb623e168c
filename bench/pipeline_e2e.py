"""End-to-end pipeline benchmark: publish -> prescreen -> router -> release.

Offers a fixed load of demo LLM outputs and measures, per released item, the time from
publish to its release being read back. Beside it, in the same run, a bare broker
passthrough of the same shape (two batched aiokafka hops forwarding bytes) gives the
baseline. Each scenario gets a fresh Tansu broker and Redis (see MISSION.md: the broker
slows as a partition grows). Prints a table and writes bench/results/pipeline_e2e.txt.

    .venv/bin/python bench/pipeline_e2e.py [--rate 300] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from hitl_shared.devservers import start_redis, start_tansu
from hitl_shared.events import LLMOutput
from hitl_shared.kafka import ensure_topics
from hitl_shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def demo_items(count: int) -> list[LLMOutput]:
    lines = (ROOT / "demo" / "sample_outputs.jsonl").read_text(encoding="utf-8").splitlines()
    base = [json.loads(line) for line in lines if line.strip()]
    items = []
    for n in range(count):
        raw = dict(base[n % len(base)])
        raw["item_id"] = f"bench-{n}"
        items.append(LLMOutput.model_validate(raw))
    return items


async def passthrough_hop(bootstrap: str, source: str, target: str, stop: asyncio.Event) -> None:
    """The baseline: consume a batch, forward every record, await acks, commit."""
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
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=500)
            futures = [
                await producer.send(target, record.value, key=record.key)
                for records in batch.values()
                for record in records
            ]
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


async def offer_and_measure(
    settings: Settings, items: list[LLMOutput], rate: float, drain_seconds: float
) -> dict[str, float]:
    topics = settings.topics
    sent: dict[str, float] = {}
    latencies: list[float] = []
    consumer = AIOKafkaConsumer(
        topics.llm_released,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=2)
    await producer.start()

    async def read() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    item_id = record.key.decode() if record.key else ""
                    if item_id in sent:
                        latencies.append(now - sent[item_id])

    reader = asyncio.create_task(read())
    start = time.perf_counter()
    for n, item in enumerate(items):
        due = start + n / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        sent[item.item_id] = time.perf_counter()
        await producer.send(topics.llm_outputs, item.to_bytes(), key=item.item_id.encode())
    await producer.flush()
    offered = time.perf_counter() - start
    await asyncio.sleep(drain_seconds)
    reader.cancel()
    await producer.stop()
    await consumer.stop()
    elapsed = offered + drain_seconds
    ordered = sorted(latencies)
    return {
        "released": len(latencies),
        "items_per_s": len(latencies) / offered if offered else 0.0,
        "p50_ms": 1000 * statistics.median(ordered) if ordered else float("nan"),
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else float("nan"),
        "elapsed_s": elapsed,
    }


async def with_fresh_stack(
    run: Callable[[Settings], Awaitable[dict[str, float]]],
) -> dict[str, float]:
    broker = start_tansu()
    redis = start_redis()
    try:
        settings = Settings(kafka_bootstrap=broker.url, redis_url=redis.url, partitions=4)
        await ensure_topics(settings)
        return await run(settings)
    finally:
        redis.stop()
        broker.stop()


async def scenario_passthrough(
    settings: Settings, items: list[LLMOutput], rate: float
) -> dict[str, float]:
    topics = settings.topics
    stop = asyncio.Event()
    hops = [
        asyncio.create_task(
            passthrough_hop(settings.kafka_bootstrap, topics.llm_outputs, topics.llm_screened, stop)
        ),
        asyncio.create_task(
            passthrough_hop(
                settings.kafka_bootstrap, topics.llm_screened, topics.llm_released, stop
            )
        ),
    ]
    await asyncio.sleep(4)  # group joins
    try:
        return await offer_and_measure(settings, items, rate, drain_seconds=3)
    finally:
        stop.set()
        await asyncio.gather(*hops)


async def scenario_pipeline(
    settings: Settings, items: list[LLMOutput], rate: float
) -> dict[str, float]:
    env = {
        **os.environ,
        "HITL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "HITL_REDIS_URL": settings.redis_url,
        "HITL_LOG_LEVEL": "WARNING",
    }
    procs = [
        subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT)
        for module in ("hitl_prescreen", "hitl_router")
    ]
    await asyncio.sleep(8)  # process start + group joins
    try:
        return await offer_and_measure(settings, items, rate, drain_seconds=5)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=300.0, help="offered items per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to offer load")
    args = parser.parse_args()
    items = demo_items(int(args.rate * args.seconds))

    base = asyncio.run(with_fresh_stack(lambda s: scenario_passthrough(s, items, args.rate)))
    pipe = asyncio.run(with_fresh_stack(lambda s: scenario_pipeline(s, items, args.rate)))
    lines = [
        f"offered {len(items)} items at {args.rate:.0f}/s over {args.seconds:.0f}s, "
        "2 KB-class demo outputs, 4 partitions, fresh broker per scenario",
        f"{'scenario':<34}{'released':>10}{'items/s':>10}{'p50 ms':>10}{'p99 ms':>10}",
    ]
    for name, row in (("bare passthrough (2 batched hops)", base), ("prescreen + router", pipe)):
        lines.append(
            f"{name:<34}{row['released']:>10.0f}{row['items_per_s']:>10.1f}"
            f"{row['p50_ms']:>10.1f}{row['p99_ms']:>10.1f}"
        )
    lines.append("pipeline releases only auto-released items; sampled and risky items are held")
    if base["p50_ms"] == base["p50_ms"] and pipe["p50_ms"] == pipe["p50_ms"]:
        lines.append(
            f"p50 latency ratio pipeline / passthrough: {pipe['p50_ms'] / base['p50_ms']:.2f}"
        )
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pipeline_e2e.txt").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
