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
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from common import demo_records, on_fresh_stack, p50_p99_ms, raw_hops, services, write_result

from hitl_shared.events import LLMOutput
from hitl_shared.settings import Settings


def demo_items(count: int) -> list[LLMOutput]:
    base = demo_records()
    items = []
    for n in range(count):
        raw = dict(base[n % len(base)])
        raw["item_id"] = f"bench-{n}"
        items.append(LLMOutput.model_validate(raw))
    return items


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
    p50_ms, p99_ms = p50_p99_ms(latencies) if latencies else (float("nan"), float("nan"))
    return {
        "released": len(latencies),
        "items_per_s": len(latencies) / offered if offered else 0.0,
        "p50_ms": p50_ms,
        "p99_ms": p99_ms,
        "elapsed_s": elapsed,
    }


async def scenario_passthrough(
    settings: Settings, items: list[LLMOutput], rate: float
) -> dict[str, float]:
    async with raw_hops(settings, join_seconds=4):  # group joins
        return await offer_and_measure(settings, items, rate, drain_seconds=3)


async def scenario_pipeline(
    settings: Settings, items: list[LLMOutput], rate: float
) -> dict[str, float]:
    with services(settings, ("hitl_prescreen", "hitl_router")):
        await asyncio.sleep(8)  # process start + group joins
        return await offer_and_measure(settings, items, rate, drain_seconds=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=300.0, help="offered items per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to offer load")
    args = parser.parse_args()
    items = demo_items(int(args.rate * args.seconds))

    base = asyncio.run(on_fresh_stack(lambda s: scenario_passthrough(s, items, args.rate)))
    pipe = asyncio.run(on_fresh_stack(lambda s: scenario_pipeline(s, items, args.rate)))
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
    write_result("pipeline_e2e", "\n".join(lines))


if __name__ == "__main__":
    main()
