"""Read a topic from its first offset to its current end: Kafka is the system of record.

No consumer group is used, so a replay commits nothing and disturbs no service. The end
is reached when every partition's position has passed its end offset and two polls in a
row come back empty (on the local Tansu broker ``end_offsets`` is the last batch's base
offset, not the high watermark, so the position check alone could stop a batch early).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer
from pydantic import TypeAdapter, ValidationError

from hitl_shared.settings import Settings

log = logging.getLogger(__name__)


async def replay_topic(
    settings: Settings,
    topic: str,
    decoder: TypeAdapter[Any],
    *,
    poll_ms: int = 300,
    timeout_s: float = 300.0,
) -> tuple[list[Any], int]:
    """Every decodable record of ``topic`` in partition order, and how many were not."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    events: list[Any] = []
    undecodable = 0
    await consumer.start()
    try:
        async with asyncio.timeout(timeout_s):
            ends: dict[Any, int] | None = None
            idle = 0
            while True:
                batch = await consumer.getmany(timeout_ms=poll_ms)
                for records in batch.values():
                    for record in records:
                        try:
                            events.append(decoder.validate_json(record.value or b""))
                        except (ValidationError, ValueError):
                            undecodable += 1
                assignment = consumer.assignment()
                if not assignment:
                    continue
                if ends is None or set(ends) != assignment:
                    ends = await consumer.end_offsets(list(assignment))
                positions = {tp: await consumer.position(tp) for tp in ends}
                passed = all(positions[tp] >= end for tp, end in ends.items())
                idle = idle + 1 if passed and not batch else 0
                if idle >= 2:
                    break
    finally:
        await consumer.stop()
    if undecodable:
        log.warning("%s: %d undecodable records skipped during replay", topic, undecodable)
    return events, undecodable
