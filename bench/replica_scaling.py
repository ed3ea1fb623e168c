"""How drain throughput scales from 1 to 2 consumer replicas per service.

A backlog of demo outputs is loaded into ``hitl.llm.outputs`` first; then prescreen and
router start with N replicas each (separate processes, one consumer group per service)
and the rate of routing decisions from the first to the last gives items/s. Beside it, in the
same run, two bare batched passthrough hops drain the same backlog with N replicas.
Each scenario gets a fresh broker and Redis. On a 2-core machine the ceiling is the CPU,
so expect well under 2x. Prints a table and writes bench/results/replica_scaling.txt.

    .venv/bin/python bench/replica_scaling.py [--items 6000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

from aiokafka import AIOKafkaConsumer
from common import (
    ROOT,
    demo_records,
    fresh_stack,
    preload,
    service_env,
    write_result,
)

from hitl_shared.events import LLMOutput
from hitl_shared.settings import Settings

PASSTHROUGH = """
import asyncio, sys
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

async def hop(bootstrap, source, target):
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id="pass-" + source,
        enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=20,
        session_timeout_ms=6000, heartbeat_interval_ms=2000)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await consumer.start(); await producer.start()
    while True:
        batch = await consumer.getmany(timeout_ms=100, max_records=500)
        futures = [await producer.send(target, r.value, key=r.key)
                   for records in batch.values() for r in records]
        if futures:
            await asyncio.gather(*futures); await consumer.commit()

asyncio.run(hop(*sys.argv[1:4]))
"""


def demo_items(count: int) -> list[LLMOutput]:
    base = demo_records()
    return [
        LLMOutput.model_validate({**base[n % len(base)], "item_id": f"scale-{n}"})
        for n in range(count)
    ]


async def drain_rate(settings: Settings, topic: str, count: int, timeout: float) -> float:
    """Records/s on ``topic`` from its first to its ``count``-th record (start-up excluded)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    seen = 0
    first: float | None = None
    deadline = time.perf_counter() + timeout
    try:
        while seen < count and time.perf_counter() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            arrived = sum(len(records) for records in batch.values())
            if arrived and first is None:
                first = time.perf_counter()
            seen += arrived
    finally:
        await consumer.stop()
    if first is None or seen < count:
        return float("nan")
    return (seen - 1) / max(time.perf_counter() - first, 1e-6)


async def scenario(kind: str, replicas: int, items: list[LLMOutput]) -> float:
    async with fresh_stack() as settings:
        topics = settings.topics
        await preload(settings.kafka_bootstrap, topics.llm_outputs, items, 20, 256 * 1024)
        if kind == "passthrough":
            hops = [
                (topics.llm_outputs, topics.llm_screened),
                (topics.llm_screened, topics.routing_decisions),
            ]
            commands = [
                [sys.executable, "-c", PASSTHROUGH, settings.kafka_bootstrap, src, dst]
                for src, dst in hops
                for _ in range(replicas)
            ]
        else:
            commands = [
                [sys.executable, "-m", module]
                for module in ("hitl_prescreen", "hitl_router")
                for _ in range(replicas)
            ]
        procs = [
            subprocess.Popen(cmd, env=service_env(settings), cwd=ROOT, stdout=subprocess.DEVNULL)
            for cmd in commands
        ]
        try:
            return await drain_rate(settings, topics.routing_decisions, len(items), timeout=240)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=6000, help="backlog size per scenario")
    args = parser.parse_args()
    items = demo_items(args.items)
    rows = {
        (kind, n): asyncio.run(scenario(kind, n, items))
        for kind in ("passthrough", "pipeline")
        for n in (1, 2)
    }
    lines = [
        f"drain of a {args.items}-item backlog, 4 partitions, {os.cpu_count()} cores; items/s "
        "from the first routed item to the last",
        f"{'scenario':<36}{'1 replica':>12}{'2 replicas':>12}{'speed-up':>10}",
    ]
    for kind, label in (
        ("passthrough", "bare passthrough (2 batched hops)"),
        ("pipeline", "prescreen + router"),
    ):
        one, two = rows[(kind, 1)], rows[(kind, 2)]
        lines.append(f"{label:<36}{one:>12.0f}{two:>12.0f}{two / one:>9.2f}x")
    write_result("replica_scaling", "\n".join(lines))


if __name__ == "__main__":
    main()
