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
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from hitl_shared.devservers import start_redis, start_tansu
from hitl_shared.events import LLMOutput
from hitl_shared.kafka import ensure_topics
from hitl_shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
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
    lines = (ROOT / "demo" / "sample_outputs.jsonl").read_text(encoding="utf-8").splitlines()
    base = [json.loads(line) for line in lines if line.strip()]
    items = []
    for n in range(count):
        raw = dict(base[n % len(base)])
        raw["item_id"] = f"scale-{n}"
        items.append(LLMOutput.model_validate(raw))
    return items


async def load_backlog(settings: Settings, items: list[LLMOutput]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=20)
    await producer.start()
    try:
        for item in items:
            await producer.send(
                settings.topics.llm_outputs, item.to_bytes(), key=item.item_id.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


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


def spawn(commands: list[list[str]], env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL) for cmd in commands]


async def scenario(kind: str, replicas: int, items: list[LLMOutput]) -> float:
    broker, redis = start_tansu(), start_redis()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        settings = Settings(kafka_bootstrap=broker.url, redis_url=redis.url, partitions=4)
        await ensure_topics(settings)
        await load_backlog(settings, items)
        env = {
            **os.environ,
            "HITL_KAFKA_BOOTSTRAP": broker.url,
            "HITL_REDIS_URL": redis.url,
            "HITL_LOG_LEVEL": "WARNING",
        }
        topics = settings.topics
        if kind == "passthrough":
            hops = [
                (topics.llm_outputs, topics.llm_screened),
                (topics.llm_screened, topics.routing_decisions),
            ]
            commands = [
                [sys.executable, "-c", PASSTHROUGH, broker.url, src, dst]
                for src, dst in hops
                for _ in range(replicas)
            ]
        else:
            commands = [
                [sys.executable, "-m", module]
                for module in ("hitl_prescreen", "hitl_router")
                for _ in range(replicas)
            ]
        procs = spawn(commands, env)
        return await drain_rate(settings, topics.routing_decisions, len(items), timeout=240)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
        redis.stop()
        broker.stop()


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
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "replica_scaling.txt").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
