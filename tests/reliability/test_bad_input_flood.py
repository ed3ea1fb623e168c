"""A flood of hostile records on each input topic: all dead-lettered, good traffic keeps flowing."""

from __future__ import annotations

import json
import random
from contextlib import AsyncExitStack

import pytest
from aiokafka import AIOKafkaProducer

from hitl_feedback.app import wire as wire_feedback
from hitl_prescreen.app import wire as wire_prescreen
from hitl_router.app import wire as wire_router
from hitl_shared.topics import dead_letter_topic
from tests.factories import llm_output
from tests.support import read_until, running

pytestmark = pytest.mark.integration


def hostile_records(count: int, seed: int) -> list[bytes]:
    """Malformed, truncated, oversize, wrong-schema, wrong-version and hostile payloads."""
    rng = random.Random(seed)
    valid = llm_output("flood-template").to_bytes()
    makers = [
        lambda i: rng.randbytes(rng.randint(0, 200)),
        lambda i: valid[: rng.randint(1, len(valid) - 1)],
        lambda i: b'{"item_id": "big-%d", "pad": "' % i + b"x" * 300_000 + b'"}',
        lambda i: json.dumps({"item_id": f"w-{i}", "app": 5, "prompt": None}).encode(),
        lambda i: valid.replace(b'"schema_version":1', b'"schema_version":7'),
        lambda i: json.dumps({"item_id": "\u202e\u0000\ud7ff" * 50}).encode(),
        lambda i: b'{"confidence": 1' + b"9" * 4000 + b"}",
        lambda i: b"[" * 20_000,
        lambda i: json.dumps([{"item_id": f"list-{i}"}]).encode(),
        lambda i: b"",
    ]
    return [makers[i % len(makers)](i) for i in range(count)]


async def _send_all(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        max_request_size=2_000_000,
        enable_idempotence=False,
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value) for value in values]
        for future in futures:
            await future
    finally:
        await producer.stop()


@pytest.mark.parametrize(
    ("topic_name", "wire", "bad_count"),
    [
        ("llm_outputs", wire_prescreen, 10_000),
        ("llm_screened", wire_router, 2_000),
        ("user_feedback", wire_feedback, 2_000),
    ],
)
async def test_flood_of_bad_records_is_dead_lettered_while_good_ones_flow(
    settings, redis, unique, topic_name, wire, bad_count
):
    topic = getattr(settings.topics, topic_name)
    bad = hostile_records(bad_count, seed=bad_count)
    good_ids = [f"good-{unique}-{n}" for n in range(50)]
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running(settings, wire, redis))
        mixed = list(bad)
        if topic_name == "llm_outputs":
            for n, item_id in enumerate(good_ids):
                mixed.insert((n + 1) * (bad_count // 51), llm_output(item_id).to_bytes())
        await _send_all(settings.kafka_bootstrap, topic, mixed)
        letters = await read_until(
            settings, dead_letter_topic(topic), lambda rs: len(rs) >= bad_count, timeout=180
        )
        if topic_name == "llm_outputs":
            screened = await read_until(
                settings,
                settings.topics.llm_screened,
                lambda rs: {r["item_id"] for r in rs} >= set(good_ids),
                timeout=60,
            )
            assert {r["item_id"] for r in screened} == set(good_ids)

    assert len(letters) == bad_count
    assert all(letter["exc_class"] and letter["original_topic"] == topic for letter in letters)
    offsets = {(letter["original_partition"], letter["original_offset"]) for letter in letters}
    assert len(offsets) == bad_count  # each bad record dead-lettered exactly once
