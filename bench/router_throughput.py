"""Router throughput on a real broker and Redis, beside a bare passthrough in the same run.

Both scenarios drain the same preloaded backlog of ~2 KB screened outputs from
``llm.screened`` through the shared batch hop, each on a fresh Tansu broker and a fresh
redis-server:

* passthrough: the handler forwards each screened output unchanged to ``llm.released``
  (bare consume-decode-publish, no Redis);
* router: the real router wiring: decide, record the decision and stage the release in
  one Lua call, queue the held ~10 % as review tasks, publish decisions and tasks, and
  publish releases through the outbox.

"Routed" means the item's decision is on ``routing.decisions`` and, for an auto-released
item, its release is on ``llm.released``. The rate is items over the time from the first
output to the last. Prints a table and writes bench/results/router_throughput.txt.

    .venv/bin/python bench/router_throughput.py [--items 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "shared"), str(ROOT / "services" / "router")]

from aiokafka import AIOKafkaConsumer  # noqa: E402
from common import fresh_stack, preload, write_result  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from hitl_router.app import wire  # noqa: E402
from hitl_router.domain import decide, default_policy  # noqa: E402
from hitl_shared.events import Flag, LLMOutput, ScreenedOutput  # noqa: E402
from hitl_shared.kafka import BatchHop, Outgoing, build_broker  # noqa: E402
from hitl_shared.settings import Settings  # noqa: E402

TEXT = ("Open Settings, choose Billing, and edit the address field. " * 40)[:2000]
CARD = Flag(
    detector="pii",
    category="payment_card",
    severity="critical",
    score=0.99,
    start=0,
    end=19,
    explanation="Luhn-valid card number",
)


def screened_items(count: int) -> list[ScreenedOutput]:
    """A realistic mix: mostly clean low-risk answers, every tenth with a card number."""
    categories = ("billing", "smalltalk", "general", "billing")
    made = []
    for n in range(count):
        item_id = f"bench-{n}"
        output = LLMOutput(
            item_id=item_id,
            app="support-bot",
            use_case="billing",
            content_category=categories[n % len(categories)],
            prompt="How do I update my billing address?",
            model="demo-model-1",
            output_text=TEXT,
            confidence=0.6 + (n % 40) / 100,
        )
        flags = (CARD,) if n % 10 == 0 else ()
        made.append(ScreenedOutput(item_id=item_id, output=output, flags=flags))
    return made


async def watch(
    settings: Settings, wanted: dict[str, set[str]], timeout: float = 150.0
) -> tuple[float, float]:
    """Read the output topics until every wanted item id showed up on its topic;
    returns (first output, last output) monotonic times."""
    consumer = AIOKafkaConsumer(
        *wanted,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    missing = {topic: set(ids) for topic, ids in wanted.items()}
    first = last = 0.0
    try:
        async with asyncio.timeout(timeout):
            while any(missing.values()):
                batch = await consumer.getmany(timeout_ms=100, max_records=5000)
                now = time.monotonic()
                for tp, records in batch.items():
                    for record in records:
                        item = json.loads(record.value)["item_id"]
                        if item in missing[tp.topic]:
                            missing[tp.topic].discard(item)
                            first = first or now
                            last = now
    finally:
        await consumer.stop()
    return first, last


Wiring = Callable[[Settings, Any, Redis, TracerProvider], Awaitable[Any]]


async def passthrough(
    settings: Settings, broker: Any, redis: Redis, provider: TracerProvider
) -> list[BatchHop]:
    topics = settings.topics

    async def forward(screened: ScreenedOutput) -> list[Outgoing]:
        return [Outgoing(topics.llm_released, screened)]

    return [
        BatchHop(
            broker,
            settings,
            provider.get_tracer("bench"),
            topic=topics.llm_screened,
            group_id="bench-passthrough",
            decoder=TypeAdapter(ScreenedOutput),
            handler=forward,
        )
    ]


async def scenario(
    name: str, wiring: Wiring, items: list[ScreenedOutput], wanted_of: Callable[[Settings], Any]
) -> dict[str, Any]:
    async with fresh_stack(redis_prefix="bench", service_name=f"bench-{name}") as settings:
        await preload(
            settings.kafka_bootstrap,
            settings.topics.llm_screened,
            items,
            linger_ms=20,
            max_batch_size=512 * 1024,
        )
        redis = Redis.from_url(settings.redis_url)
        provider = TracerProvider()
        broker = build_broker(settings, provider)
        await wiring(settings, broker, redis, provider)
        started = time.monotonic()
        await broker.start()
        try:
            first, last = await watch(settings, wanted_of(settings))
        finally:
            await broker.stop()
            await redis.aclose()
        span = max(last - first, 1e-6)
        return {
            "scenario": name,
            "items": len(items),
            "seconds": span,
            "rate": len(items) / span,
            "startup_s": first - started,
        }


async def main(count: int) -> str:
    items = screened_items(count)
    ids = {s.item_id for s in items}
    policy = default_policy()
    released = {s.item_id for s in items if decide(s, policy).action != "hold"}
    held = len(ids) - len(released)
    base = await scenario("passthrough", passthrough, items, lambda s: {s.topics.llm_released: ids})
    routed = await scenario(
        "router",
        wire,
        items,
        lambda s: {s.topics.routing_decisions: ids, s.topics.llm_released: released},
    )
    ratio = routed["rate"] / base["rate"]
    lines = [
        f"Router throughput: {count} screened outputs (~2 KB), 4 partitions, fresh Tansu + "
        f"redis-server per scenario; {held} held for review, {len(released)} released",
        "",
        f"{'scenario':<12} {'items':>7} {'seconds':>8} {'items/s':>9} {'startup s':>10}",
    ]
    for row in (base, routed):
        lines.append(
            f"{row['scenario']:<12} {row['items']:>7} {row['seconds']:>8.2f} "
            f"{row['rate']:>9.0f} {row['startup_s']:>10.1f}"
        )
    lines += [
        "",
        f"router / passthrough = {ratio:.0%} (target >= 50%)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=20_000)
    args = parser.parse_args()
    write_result("router_throughput", asyncio.run(main(args.items)))
