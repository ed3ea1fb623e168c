"""Registry state in Redis, a per-template lock, red-team summaries, and the rebuild.

``{ns}:prompts:tpl:<id>`` holds one template's folded state as JSON and
``{ns}:prompts:templates`` the ids. Kafka is the record: ``rebuild`` folds the prompts
topic from its start into fresh state, so losing Redis loses nothing but red-team
summaries (recomputed from the screened / released topics by ``red_team --summarize``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError
from redis.asyncio import Redis

from hitl_review_api.prompts.domain import Refused, TemplateState, fold
from hitl_shared.prompts import PROMPT_EVENTS, PromptEvent
from hitl_shared.settings import Settings

LOCK_MS = 10_000
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class PromptStore:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.ns = "{" + namespace + "}"
        self._unlock = redis.register_script(_UNLOCK)

    def key(self, template_id: str) -> str:
        return f"{self.ns}:prompts:tpl:{template_id}"

    @property
    def index(self) -> str:
        return f"{self.ns}:prompts:templates"

    def red_team_key(self, template_id: str, version: str) -> str:
        return f"{self.ns}:prompts:redteam:{template_id}:{version}"

    async def get(self, template_id: str) -> TemplateState | None:
        raw = await self.redis.get(self.key(template_id))
        return TemplateState.model_validate_json(raw) if raw else None

    async def save(self, state: TemplateState) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key(state.template_id), state.model_dump_json())
            pipe.sadd(self.index, state.template_id)
            await pipe.execute()

    async def all(self) -> list[TemplateState]:
        ids = sorted(_text(i) for i in await self.redis.smembers(self.index))
        if not ids:
            return []
        raws = await self.redis.mget([self.key(i) for i in ids])
        return [TemplateState.model_validate_json(r) for r in raws if r]

    async def for_app(self, app: str) -> list[TemplateState]:
        return [s for s in await self.all() if s.app == app]

    async def replace_all(self, states: dict[str, TemplateState]) -> None:
        """Swap in rebuilt state: templates not on the topic disappear."""
        old = [_text(i) for i in await self.redis.smembers(self.index)]
        async with self.redis.pipeline(transaction=True) as pipe:
            for template_id in old:
                pipe.delete(self.key(template_id))
            pipe.delete(self.index)
            for state in states.values():
                pipe.set(self.key(state.template_id), state.model_dump_json())
                pipe.sadd(self.index, state.template_id)
            await pipe.execute()

    @asynccontextmanager
    async def locked(self, template_id: str, wait_s: float = 10.0) -> AsyncIterator[None]:
        """One writer per template across replicas: commands read, decide, then publish."""
        key = f"{self.key(template_id)}:lock"
        token = secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while not await self.redis.set(key, token, nx=True, px=LOCK_MS):
            if loop.time() > deadline:
                raise Refused(503, f"template {template_id!r} is busy; retry")
            await asyncio.sleep(0.02)
        try:
            yield
        finally:
            await self._unlock(keys=[key], args=[token])

    async def save_red_team(self, template_id: str, version: str, summary: dict[str, Any]) -> None:
        await self.redis.hset(
            self.red_team_key(template_id, version), summary["run_id"], json.dumps(summary)
        )

    async def red_team_runs(self, template_id: str, version: str) -> list[dict[str, Any]]:
        raw = await self.redis.hgetall(self.red_team_key(template_id, version))
        runs = [json.loads(v) for v in raw.values()]
        return sorted(runs, key=lambda r: str(r.get("started_at", "")))


async def read_events(settings: Settings, *, timeout_s: float = 30.0) -> list[PromptEvent]:
    """Every decodable event on the prompts topic, up to its end when called."""
    topic = settings.topics.prompts
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    await consumer.start()
    events: list[PromptEvent] = []
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        async with asyncio.timeout(timeout_s):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        try:
                            events.append(PROMPT_EVENTS.validate_json(record.value or b""))
                        except ValidationError:
                            continue  # not ours to repair; the topic keeps the bytes
    finally:
        await consumer.stop()
    return events


async def rebuild(settings: Settings, redis: Redis) -> int:
    """Fold the prompts topic into fresh Redis state; returns how many templates."""
    events = await read_events(settings)
    # one template's events share a partition, so per-template order is topic order
    states = fold(events)
    await PromptStore(redis, settings.redis_prefix).replace_all(states)
    return len(states)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
