"""Latency of ``HitlClient.submit(wait=True)`` for auto-released items.

Scenarios, each on a fresh Tansu broker and Redis (the broker slows as partitions grow):

1. bare round trip: aiokafka ``send_and_wait`` to a topic, a group-less consumer reads it;
2. bare 2-hop passthrough: the same shape as the pipeline (app -> hop -> hop -> app) with
   raw batched aiokafka hops forwarding bytes, one item in flight at a time;
3. ``submit(wait=True)`` over those raw hops (the second one emits a Release): the
   client's own cost (validation, tracing, waiting) beside scenario 2;
4. ``submit(wait=True)`` through prescreen + router (real services as child processes),
   one item in flight at a time;
5. the same with 16 submits in flight (an app serving concurrent users);
6. 16 in flight over the raw hops: what the client and broker alone sustain.

Only items the router's current policy auto-releases are submitted (held ones would wait
for a human). Prints a table and writes bench/results/client_latency.txt.

    .venv/bin/python bench/client_latency.py [--items 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from common import demo_records, on_fresh_stack, p50_p99_ms, raw_hops, services, write_result

from hitl_prescreen.domain import screen
from hitl_router.domain import decide
from hitl_router.policy import default_policy
from hitl_shared.client import HitlClient
from hitl_shared.events import LLMOutput, Release
from hitl_shared.settings import Settings

CONCURRENCY = 16
HELD_TIMEOUT = 5.0  # an item the running router holds anyway is excluded after this
Row = dict[str, float]


def auto_released_items(count: int) -> list[LLMOutput]:
    """Demo outputs (fresh ids) that the router's shipped policy releases without review."""
    base = demo_records()
    policy = default_policy()
    items: list[LLMOutput] = []
    n = 0
    while len(items) < count:
        raw = dict(base[n % len(base)], item_id=f"lat-{n}")
        n += 1
        output = LLMOutput.model_validate(raw)
        if decide(screen(output), policy).action == "release":
            items.append(output)
        if n > 50 * count:
            raise SystemExit("the shipped policy releases almost nothing: cannot benchmark")
    return items


def stats(latencies: list[float], elapsed: float) -> Row:
    p50_ms, p99_ms = p50_p99_ms(latencies)
    return {
        "n": len(latencies),
        "per_s": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": p50_ms,
        "p99_ms": p99_ms,
    }


async def _reader(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    await consumer.topics()
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(parts)
    await consumer.seek_to_end(*parts)
    for tp in parts:
        await consumer.position(tp)
    return consumer


async def _round_trips(settings: Settings, source: str, target: str, items: list[LLMOutput]) -> Row:
    """Send each item to ``source``, time until it is read back from ``target``."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=False, linger_ms=0
    )
    await producer.start()
    consumer = await _reader(settings.kafka_bootstrap, target)
    latencies: list[float] = []
    start = time.perf_counter()
    try:
        for item in items:
            key = item.item_id.encode()
            sent = time.perf_counter()
            await producer.send_and_wait(source, item.to_bytes(), key=key)
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                if any(r.key == key for records in batch.values() for r in records):
                    break
            latencies.append(time.perf_counter() - sent)
    finally:
        await producer.stop()
        await consumer.stop()
    return stats(latencies, time.perf_counter() - start)


def _as_release(value: bytes) -> bytes:
    """What a router with nothing to check would publish: the text, auto-released."""
    raw = json.loads(value)
    return Release(
        item_id=raw["item_id"],
        app=raw["app"],
        outcome="auto_released",
        text=raw["output_text"],
        policy_version="bench",
    ).to_bytes()


async def scenario_bare(settings: Settings, items: list[LLMOutput]) -> Row:
    topic = settings.topics.llm_outputs
    return await _round_trips(settings, topic, topic, items)


async def _with_raw_hops(
    settings: Settings, run: Callable[[], Awaitable[Row]], *, releases: bool = False
) -> Row:
    """Two raw hops outputs -> screened -> released; the second one may emit Releases."""
    last = _as_release if releases else None
    async with raw_hops(settings, join_seconds=5, last=last, enable_idempotence=False):
        return await run()


async def scenario_two_hops(settings: Settings, items: list[LLMOutput]) -> Row:
    topics = settings.topics
    return await _with_raw_hops(
        settings, lambda: _round_trips(settings, topics.llm_outputs, topics.llm_released, items)
    )


async def scenario_client_raw(settings: Settings, items: list[LLMOutput], in_flight: int) -> Row:
    """The client's own cost: submit(wait) over the raw hops, no services behind them."""
    return await _with_raw_hops(
        settings, lambda: _submit_all(settings, items, None, in_flight), releases=True
    )


async def _with_services(settings: Settings, run: Callable[[], Awaitable[Row]]) -> Row:
    with services(settings, ("hitl_prescreen", "hitl_router")):
        return await run()


async def _warm_up(hitl: HitlClient, item: LLMOutput) -> None:
    """Wait until the services have joined their groups and released an item."""
    async with asyncio.timeout(60):
        while (await hitl.submit(item, wait=True, timeout=2)).timed_out:
            pass


async def _submit_all(
    settings: Settings, items: list[LLMOutput], warm: LLMOutput | None, in_flight: int
) -> Row:
    async with HitlClient(settings, client_id="bench") as hitl:
        if warm is not None:
            await _warm_up(hitl, warm)
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        queue = list(reversed(items))
        held = 0.0

        async def worker() -> None:
            nonlocal held
            while queue:
                result = await hitl.submit(queue.pop(), wait=True, timeout=HELD_TIMEOUT)
                statuses[result.status] = statuses.get(result.status, 0) + 1
                if result.released:
                    latencies.append(result.waited_s)
                else:
                    held += result.waited_s

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        row = stats(latencies, time.perf_counter() - start - held / in_flight)
        row["not_auto"] = sum(v for k, v in statuses.items() if k != "auto_released")
        return row


async def scenario_client(
    settings: Settings, items: list[LLMOutput], warm: LLMOutput, in_flight: int
) -> Row:
    return await _with_services(settings, lambda: _submit_all(settings, items, warm, in_flight))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300, help="items per scenario")
    args = parser.parse_args()
    *items, warm = auto_released_items(args.items + 1)
    rows = [
        ("bare produce -> consume", asyncio.run(on_fresh_stack(lambda s: scenario_bare(s, items)))),
        (
            "bare 2 raw hops, 1 in flight",
            asyncio.run(on_fresh_stack(lambda s: scenario_two_hops(s, items))),
        ),
        (
            "submit(wait) over the raw hops",
            asyncio.run(on_fresh_stack(lambda s: scenario_client_raw(s, items, 1))),
        ),
        (
            "submit(wait) 1 in flight",
            asyncio.run(on_fresh_stack(lambda s: scenario_client(s, items, warm, 1))),
        ),
        (
            f"submit(wait) {CONCURRENCY} in flight",
            asyncio.run(on_fresh_stack(lambda s: scenario_client(s, items, warm, CONCURRENCY))),
        ),
        (
            f"submit(wait) {CONCURRENCY} in flight, raw hops",
            asyncio.run(on_fresh_stack(lambda s: scenario_client_raw(s, items, CONCURRENCY))),
        ),
    ]
    lines = [
        f"{args.items} auto-released demo outputs per scenario, 4 partitions, fetch wait 20 ms, "
        "fresh broker per scenario; submit(wait) goes through prescreen + router processes",
        f"{'scenario':<36}{'items':>7}{'items/s':>9}{'p50 ms':>9}{'p99 ms':>9}",
    ]
    for name, row in rows:
        lines.append(
            f"{name:<36}{row['n']:>7.0f}{row['per_s']:>9.1f}"
            f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}"
        )
    held = rows[3][1].get("not_auto", 0) + rows[4][1].get("not_auto", 0)
    lines.append(f"items the running router did not auto-release (excluded): {held:.0f}")
    base, raw, real = rows[1][1], rows[2][1], rows[3][1]
    lines.append(
        f"client's own cost at p50 (submit(wait) over raw hops - bare raw hops): "
        f"{raw['p50_ms'] - base['p50_ms']:+.1f} ms"
    )
    lines.append(
        f"prescreen + router at p50 (submit(wait) 1 in flight - over raw hops): "
        f"{real['p50_ms'] - raw['p50_ms']:+.1f} ms"
    )
    write_result("client_latency", "\n".join(lines))


if __name__ == "__main__":
    main()
