"""Publishes staged releases and retractions exactly once onto the release topic (ADR 6).

Handlers never publish a release themselves: they stage it in Redis (``{ns}:outbox``)
together with the release-once marker, in the same Lua call that records the decision.
One publisher at a time (a Redis lock with a token) takes the head of the outbox,
publishes it, awaits the broker's acks, and then, in one step, trims what it published
and records the next offset per partition. After a crash, the next holder reads the
release topic from those offsets to its end: whatever staged entry it finds there was
published before the crash and is dropped, so nothing is lost and nothing is
published twice. Retries inside Kafka's producer are the one remaining source of a
duplicate (idempotent producers are unavailable on the local broker); they carry the
same ``event_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis

from hitl_router.scan import scan_topic
from hitl_router.state import OutboxEntry

log = logging.getLogger("hitl.router.outbox")

LOCK_TTL_MS = 5000
BATCH = 500
IDLE_WAIT_S = 0.05  # staged by another router: picked up within this

_ACQUIRE = """
local key, token, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local holder = redis.call('GET', key)
if holder == token then redis.call('PEXPIRE', key, ttl) return 1 end
if holder then return 0 end
redis.call('SET', key, token, 'PX', ttl)
return 2
"""

_COMMIT = """
-- trim what was published and remember the next offset per partition, if still the holder
local ns, token, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('GET', ns .. ':outbox:lock') ~= token then return 0 end
redis.call('LTRIM', ns .. ':outbox', count, -1)
for i = 4, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', ns .. ':outbox:offsets', ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > current then
    redis.call('HSET', ns .. ':outbox:offsets', ARGV[i], ARGV[i + 1])
  end
end
return 1
"""


async def published_event_ids(bootstrap: str, topic: str, start: dict[int, int]) -> set[str]:
    """Event ids already on the release topic after the last recorded offsets."""
    found: set[str] = set()

    def collect(record: ConsumerRecord[Any, Any]) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            found.add(json.loads(record.value)["event_id"])

    await scan_topic(bootstrap, topic, collect, start=start)
    return found


class OutboxPublisher:
    """The one publisher of the release topic; runs beside the router's consumers.

    It has its own producer: the entries carry the trace context of the routing span
    they were staged in, and go out with it as their ``traceparent``.
    """

    def __init__(
        self,
        redis: Redis,
        namespace: str,
        *,
        topic: str,
        bootstrap: str,
        wakeup: asyncio.Event | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.tracer = tracer or trace.get_tracer("hitl.router.outbox")
        self.redis = redis
        self.ns = "{" + namespace + "}"
        self.topic = topic
        self.bootstrap = bootstrap
        self.wakeup = wakeup or asyncio.Event()
        self.token = uuid.uuid4().hex
        self.published = 0
        self.skipped_after_crash = 0
        self._acquire = redis.register_script(_ACQUIRE)
        self._commit = redis.register_script(_COMMIT)
        self._recovered: set[str] | None = None
        self._producer: AIOKafkaProducer | None = None

    async def hold_lock(self) -> bool:
        """Take or keep the publisher lock; a fresh take triggers crash recovery."""
        got = int(await self._acquire(args=[f"{self.ns}:outbox:lock", self.token, LOCK_TTL_MS]))
        if got == 2:
            await self._recover()
        return got > 0

    async def _recover(self) -> None:
        if not await self.redis.llen(f"{self.ns}:outbox"):
            self._recovered = set()
            return
        raw = await self.redis.hgetall(f"{self.ns}:outbox:offsets")
        start = {int(k): int(v) for k, v in raw.items()}
        self._recovered = await published_event_ids(self.bootstrap, self.topic, start)
        log.info(
            "outbox recovery: %d records after the last recorded offsets", len(self._recovered)
        )

    async def publish_once(self) -> int:
        """Publish the outbox head; returns how many entries it took off the outbox."""
        raws = await self.redis.lrange(f"{self.ns}:outbox", 0, BATCH - 1)
        if not raws:
            return 0
        entries = [OutboxEntry.decode(r) for r in raws]
        already = self._recovered or set()
        futures: list[asyncio.Future[Any]] = []
        for entry in entries:
            if entry.event_id in already:
                self.skipped_after_crash += 1
                continue
            futures.append(await self._send(entry))
        metadata = await asyncio.gather(*futures)
        next_offsets: dict[int, int] = {}
        for meta in metadata:
            next_offsets[meta.partition] = max(next_offsets.get(meta.partition, 0), meta.offset + 1)
        args: list[Any] = [self.ns, self.token, len(entries)]
        for partition, offset in next_offsets.items():
            args += [partition, offset]
        if not int(await self._commit(args=args)):
            raise LockLost("outbox lock lost while publishing; another router took over")
        if self._recovered:
            log.info(
                "outbox recovery: %d staged entries were already on %s; not published again",
                len(entries) - len(futures),
                self.topic,
            )
        self._recovered = None
        self.published += len(futures)
        return len(entries)

    async def _send(self, entry: OutboxEntry) -> asyncio.Future[Any]:
        assert self._producer is not None, "publish_once runs inside run()"
        headers = {**entry.headers, "content-type": "application/json", "event_id": entry.event_id}
        # the publish joins the item's trace under the span that staged the release
        with self.tracer.start_as_current_span(
            f"{self.topic} publish",
            context=extract(entry.headers),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": self.topic,
                "messaging.operation.type": "publish",
                "hitl.item_id": entry.item_id,
            },
        ):
            inject(headers)
            future: asyncio.Future[Any] = await self._producer.send(
                self.topic,
                entry.payload.encode(),
                key=entry.item_id.encode(),
                headers=[(k, v.encode()) for k, v in headers.items()],
            )
        return future

    async def run(self, alive: Callable[[], bool]) -> None:
        """Publish while ``alive()``; waits for the lock when another router holds it."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, enable_idempotence=False, linger_ms=2
        )
        await self._producer.start()
        try:
            await self._loop(alive)
        finally:
            await self._producer.stop()
            self._producer = None

    async def _loop(self, alive: Callable[[], bool]) -> None:
        last_lock = 0.0
        holding = False
        while alive():
            now = time.monotonic()
            if not holding or now - last_lock > LOCK_TTL_MS / 3000:
                holding = await self.hold_lock()
                last_lock = now
                if not holding:
                    await asyncio.sleep(LOCK_TTL_MS / 5000)
                    continue
            self.wakeup.clear()
            try:
                taken = await self.publish_once()
            except LockLost as exc:
                log.warning("%s", exc)
                holding = False
                continue
            if not taken:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), IDLE_WAIT_S)

    async def release_lock(self) -> None:
        key = f"{self.ns}:outbox:lock"
        if (await self.redis.get(key)) in (self.token, self.token.encode()):
            await self.redis.delete(key)


class LockLost(RuntimeError):
    """Another publisher holds the outbox lock now."""
