"""Rebuild the router's and the review queues' Redis state from Kafka.

    python -m hitl_router.rebuild

Replays, in order: ``routing.decisions`` (routing records), ``llm.released``
(release-once markers, so nothing is released again), ``review.tasks`` (queued tasks;
``enqueue`` is idempotent) and ``review.decisions`` (finished tasks leave the queues,
first approvals and escalations are re-applied). Run it with the routers stopped, or
at least before they take traffic: it is the way back after Redis lost its data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import ConsumerRecord
from pydantic import ValidationError
from redis.asyncio import Redis

from hitl_router.scan import scan_topic
from hitl_router.state import RouterStore
from hitl_shared.events import RELEASED_ADAPTER, ReviewDecision, ReviewTask, RoutingDecision
from hitl_shared.queue import QueuedTask, ReviewQueue, bucket_name, next_level
from hitl_shared.settings import Settings

log = logging.getLogger("hitl.router.rebuild")


async def _replay(
    settings: Settings, topic: str, apply: Callable[[bytes], Awaitable[str]]
) -> tuple[Counter[str], dict[int, int]]:
    """Read ``topic`` to its end, then apply every record in order."""
    records: list[bytes] = []

    def keep(record: ConsumerRecord[Any, Any]) -> None:
        records.append(record.value or b"")

    ends = await scan_topic(settings.kafka_bootstrap, topic, keep)
    counts: Counter[str] = Counter()
    for raw in records:
        try:
            counts[await apply(raw)] += 1
        except (ValidationError, ValueError, KeyError):
            counts["undecodable"] += 1
    return counts, ends


async def rebuild(settings: Settings) -> dict[str, dict[str, int]]:
    topics = settings.topics
    redis = Redis.from_url(settings.redis_url)
    store = RouterStore(redis, settings.redis_prefix)
    queue = ReviewQueue(redis, settings.redis_prefix)
    report: dict[str, dict[str, int]] = {}
    try:

        async def routing(raw: bytes) -> str:
            decision = RoutingDecision.model_validate_json(raw)
            return "restored" if await store.remember_routing(decision) else "present"

        async def released(raw: bytes) -> str:
            event = RELEASED_ADAPTER.validate_json(raw)
            kind = "release" if event.event_type == "llm.release" else "retraction"
            fresh = await store.mark_published(kind, event.item_id, event.event_id)
            return f"{kind}_{'restored' if fresh else 'present'}"

        async def task(raw: bytes) -> str:
            t = ReviewTask.model_validate_json(raw)
            added = await queue.enqueue_many(
                [
                    QueuedTask(
                        t.task_id,
                        bucket_name(
                            t.required_level, t.skills[0] if t.skills else "general", t.language
                        ),
                        int(t.priority),
                        raw.decode(),
                        since_ms=int(t.screened.output.occurred_at.timestamp() * 1000),
                    )
                ]
            )
            return "queued" if added else "present"

        async def decision(raw: bytes) -> str:
            d = ReviewDecision.model_validate_json(raw)
            if d.verdict == "escalate":
                current = (await queue.task(d.task_id)).get("bucket", "")
                _, _, rest = current.partition(":")
                target = f"{next_level(d.reviewer_level)}:{rest}" if rest else None
                done = await queue.settle(
                    d.task_id, reviewer_id=d.reviewer_id, final=False, bucket=target
                )
                return "escalated" if done else "unknown_task"
            done = await queue.settle(d.task_id, reviewer_id=d.reviewer_id, final=d.final)
            if not done:
                return "unknown_task"
            return "finished" if d.final else "first_approval"

        for name, topic, apply in (
            ("routing", topics.routing_decisions, routing),
            ("released", topics.llm_released, released),
            ("tasks", topics.review_tasks, task),
            ("decisions", topics.review_decisions, decision),
        ):
            counts, ends = await _replay(settings, topic, apply)
            report[name] = dict(counts)
            if name == "released" and ends:
                # the outbox's crash recovery need only look past what is there now
                await redis.hset(
                    f"{store.ns}:outbox:offsets", mapping={str(p): o for p, o in ends.items()}
                )
    finally:
        await redis.aclose()
    return report


def main() -> int:
    logging.basicConfig(level=logging.INFO)
    report = asyncio.run(rebuild(Settings(service_name="router-rebuild")))
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
