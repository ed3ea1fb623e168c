"""Reading a topic from given offsets to its end, for crash recovery and rebuilds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

SCAN_TIMEOUT_S = 120.0
EMPTY_POLLS_AT_END = 2


async def scan_topic(
    bootstrap: str,
    topic: str,
    handle: Callable[[ConsumerRecord[Any, Any]], None],
    *,
    start: dict[int, int] | None = None,
    timeout: float = SCAN_TIMEOUT_S,
) -> dict[int, int]:
    """Feed every record from ``start`` (default: the beginning) to the end to ``handle``.

    Returns the next offset per partition. The local broker's ``end_offsets`` is not the
    high watermark (it reports a batch base offset), so the end is where two polls in a
    row come back empty and every partition is at or past ``end_offsets``; nothing else
    may be writing meanwhile (the caller holds the writer's lock, or runs offline).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return {}
        consumer.assign(assigned)
        for tp in assigned:
            consumer.seek(tp, (start or {}).get(tp.partition, 0))
        ends = await consumer.end_offsets(assigned)
        deadline = time.monotonic() + timeout
        empty_polls = 0
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=250, max_records=5000)
            for records in batch.values():
                for record in records:
                    handle(record)
            empty_polls = 0 if batch else empty_polls + 1
            if empty_polls >= EMPTY_POLLS_AT_END:
                positions = {tp: await consumer.position(tp) for tp in assigned}
                if all(positions[tp] >= ends[tp] for tp in assigned):
                    return {tp.partition: positions[tp] for tp in assigned}
        raise TimeoutError(f"could not read {topic} to its end in {timeout}s")
    finally:
        await consumer.stop()
