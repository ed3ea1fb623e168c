"""Feedback state in Redis: annotations, running counters, segment evidence, knowledge base.

Every key lives under the deployment's hash tag. Ingest is one Lua script, so an
annotation and every counter it feeds change together or not at all: a redelivered
decision (same ``event_id``) changes nothing and gets the first ingest's segment
evidence back, from which the same policy update is re-derived.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from redis.asyncio import Redis

from hitl_feedback.annotations import Annotation, edge_case_entry, from_json, to_json
from hitl_feedback.sampling import Evidence
from hitl_shared.events import Release, Retraction, UserFeedback

COUNTER_DIMENSIONS = {
    "app": "app",
    "use_case": "use_case",
    "tier": "tier",
    "model": "model",
    "prompt_version": "prompt_template_version",
    "reviewer": "reviewer_id",
}
SEEN_TTL_S = 30 * 86400
LOAD_CHUNK = 1000

_INGEST = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return {0, redis.call('HGET', KEYS[4], ARGV[1]) or ''}
end
-- Validate before the first write: Redis does not roll a failed script back.
for i = 7, #ARGV, 2 do
  if not string.match(ARGV[i + 1], '^-?%d+$') then
    return redis.error_reply('counter ' .. ARGV[i] .. ' is not an integer')
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[1])
for i = 7, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 1])
end
if ARGV[3] ~= '1' then
  return {1, ''}
end
local err = tonumber(ARGV[4])
local reviewed = redis.call('HINCRBY', KEYS[2], 'reviewed', 1)
local errors = redis.call('HINCRBY', KEYS[2], 'errors', err)
-- The window: latest ARGV[5] outcomes by event time (ties by member), order-independent.
local member = ARGV[1] .. '|' .. ARGV[4]
redis.call('ZADD', KEYS[6], ARGV[6], member)
redis.call('HINCRBY', KEYS[2], 'window_errors', err)
local overflow = redis.call('ZCARD', KEYS[6]) - tonumber(ARGV[5])
if overflow > 0 then
  for _, gone in ipairs(redis.call('ZRANGE', KEYS[6], 0, overflow - 1)) do
    if string.sub(gone, -2) == '|1' then
      redis.call('HINCRBY', KEYS[2], 'window_errors', -1)
    end
  end
  redis.call('ZREMRANGEBYRANK', KEYS[6], 0, overflow - 1)
end
local n = redis.call('ZCARD', KEYS[6])
local e = tonumber(redis.call('HGET', KEYS[2], 'window_errors'))
local result = reviewed .. ',' .. errors .. ',' .. n .. ',' .. e
redis.call('HSET', KEYS[4], ARGV[1], result)
return {1, result}
"""

_ONCE_INCR = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
for i = 2, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1])
end
return 1
"""


@dataclass(frozen=True)
class Ingested:
    new: bool
    evidence: Evidence | None


def tag(namespace: str) -> str:
    """``{namespace}``: the hash tag every feedback key starts with."""
    return namespace if namespace.startswith("{") else "{" + namespace + "}"


def counter_fields(annotation: Annotation) -> list[tuple[str, int]]:
    """The running-counter increments one annotation contributes (``dim=value|stat``).

    Integers only (time in milliseconds), so sums do not depend on processing order.
    """
    stats = [("decisions", 1), ("time_ms", round(annotation.time_spent_s * 1000))]
    if annotation.verdict == "escalate":
        stats.append(("escalations", 1))
    if annotation.is_outcome:
        stats.append(("outcomes", 1))
        if annotation.is_error:
            stats.append(("errors", 1))
        if annotation.verdict == "edit":
            stats.append(("edits", 1))
        if annotation.verdict == "reject":
            stats.append(("rejects", 1))
    scopes = ["all"] + [
        f"{dim}={getattr(annotation, field) or 'unknown'}"
        for dim, field in COUNTER_DIMENSIONS.items()
    ]
    return [(f"{scope}|{stat}", value) for scope in scopes for stat, value in stats]


def _evidence(raw: bytes | str | None) -> Evidence | None:
    if not raw:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    reviewed, errors, window_items, window_errors = (int(v) for v in text.split(","))
    return Evidence(reviewed, errors, window_items, window_errors)


class FeedbackStore:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.ns = tag(namespace)
        self._ingest = redis.register_script(_INGEST)
        self._once_incr = redis.register_script(_ONCE_INCR)

    @property
    def annotations_key(self) -> str:
        return f"{self.ns}:fb:ann"

    @property
    def time_index_key(self) -> str:
        return f"{self.ns}:fb:ann_by_time"

    @property
    def counters_key(self) -> str:
        return f"{self.ns}:fb:counters"

    @property
    def kb_key(self) -> str:
        return f"{self.ns}:kb:edge_cases"

    def segment_key(self, segment: str) -> str:
        return f"{self.ns}:fb:segment:{segment}"

    async def screened_json(self, item_id: str) -> bytes | str | None:
        """The router's stored ScreenedOutput for the item (carries the prompt)."""
        raw: bytes | str | None = await self.redis.hget(f"{self.ns}:item:{item_id}", "screened")
        return raw

    async def ingest(self, annotation: Annotation, window: int) -> Ingested:
        args: list[str | float] = [
            annotation.event_id,
            to_json(annotation),
            "1" if annotation.is_outcome and annotation.tier is not None else "0",
            "1" if annotation.is_error else "0",
            str(window),
            repr(annotation.occurred_at.timestamp()),
        ]
        for name, value in counter_fields(annotation):
            args.extend((name, str(value)))
        new, result = await self._ingest(
            keys=[
                self.annotations_key,
                self.segment_key(annotation.segment),
                self.counters_key,
                f"{self.ns}:fb:ingested",
                self.time_index_key,
                f"{self.segment_key(annotation.segment)}:window",
            ],
            args=args,
        )
        return Ingested(new=bool(new), evidence=_evidence(result))

    async def remember_edge_case(self, annotation: Annotation) -> bool:
        """Settled edits and rejections become knowledge-base entries (overwrite = idempotent)."""
        entry = edge_case_entry(annotation)
        if entry is None:
            return False
        await self.redis.hset(self.kb_key, str(entry["case_id"]), json.dumps(entry))
        return True

    async def count_once(
        self, event_id: str, key: str, fields: Iterable[tuple[str, float]]
    ) -> bool:
        args: list[str | float] = [SEEN_TTL_S]
        for name, value in fields:
            args.extend((name, repr(value)))
        done = await self._once_incr(keys=[f"{self.ns}:fb:seen:{event_id}", key], args=args)
        return bool(done)

    async def count_user_feedback(self, feedback: UserFeedback) -> bool:
        fields: list[tuple[str, float]] = [("events", 1.0), (f"kind:{feedback.kind}", 1.0)]
        if feedback.rating is not None:
            fields += [("rating_n", 1.0), ("rating_sum", float(feedback.rating))]
        if feedback.signal:
            fields.append((f"signal:{feedback.signal}", 1.0))
        if feedback.report:
            fields.append((f"report:{feedback.report}", 1.0))
        return await self.count_once(feedback.event_id, f"{self.ns}:fb:user:{feedback.app}", fields)

    async def count_release(self, event: Release | Retraction) -> bool:
        outcome = event.outcome if isinstance(event, Release) else "retracted"
        return await self.count_once(
            event.event_id, f"{self.ns}:fb:releases", [(f"{event.app}|{outcome}", 1.0)]
        )

    async def annotations(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[Annotation]:
        """Annotations in time order; a window reads only its slice of the time index."""
        low = since.timestamp() if since else "-inf"
        high = f"({until.timestamp()!r}" if until else "+inf"
        ids = cast(list[bytes], await self.redis.zrangebyscore(self.time_index_key, low, high))
        loaded: list[Annotation] = []
        for start in range(0, len(ids), LOAD_CHUNK):
            chunk = ids[start : start + LOAD_CHUNK]
            loaded.extend(
                from_json(raw) for raw in await self.redis.hmget(self.annotations_key, chunk) if raw
            )
        loaded.sort(key=lambda a: (a.occurred_at, a.event_id))
        return loaded

    async def hash_floats(self, key: str) -> dict[str, float]:
        raw = await self.redis.hgetall(key)
        return {
            (k.decode() if isinstance(k, bytes) else k): float(v) for k, v in sorted(raw.items())
        }

    async def counters(self) -> dict[str, float]:
        return await self.hash_floats(self.counters_key)

    async def user_feedback(self) -> dict[str, dict[str, float]]:
        prefix = f"{self.ns}:fb:user:"
        found: dict[str, dict[str, float]] = {}
        async for key in self.redis.scan_iter(match=f"{prefix}*", count=1000):
            name = key.decode() if isinstance(key, bytes) else key
            found[name[len(prefix) :]] = await self.hash_floats(name)
        return dict(sorted(found.items()))

    async def releases(self) -> dict[str, float]:
        return await self.hash_floats(f"{self.ns}:fb:releases")

    async def segments(self) -> dict[str, Evidence]:
        prefix = f"{self.ns}:fb:segment:"
        found: dict[str, Evidence] = {}
        async for key in self.redis.scan_iter(match=f"{prefix}*", count=1000):
            name = key.decode() if isinstance(key, bytes) else key
            if name.endswith(":window"):
                continue
            values = await self.hash_floats(name)
            found[name[len(prefix) :]] = Evidence(
                reviewed=int(values.get("reviewed", 0)),
                errors=int(values.get("errors", 0)),
                window_items=int(await self.redis.zcard(f"{name}:window")),
                window_errors=int(values.get("window_errors", 0)),
            )
        return dict(sorted(found.items()))
