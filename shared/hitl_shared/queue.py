"""Redis priority queues of review tasks, with leases and fencing tokens.

Layout (every key under one hash tag, so a Redis Cluster keeps them on one slot):

- ``{ns}:q:<level>:<skill>:<lang>``  sorted set per qualification bucket; score =
  priority class (tier) * 1e13 + SLA deadline in ms, so lower is more urgent and,
  within a tier, the task due first (hence the oldest) comes first;
- ``{ns}:task:<task_id>``  hash: payload, bucket, score, state, owner, fence, expiry;
- ``{ns}:leases``  sorted set of leased task ids by lease expiry;
- ``{ns}:buckets`` set of bucket names ever used (overview, escalation sweeps);
- ``{ns}:fence``  counter handing out fencing tokens.

Claim is one Lua script: reap expired leases, read the head of each bucket the reviewer
may take, pick the best, lease it with a new fencing token. Renew, complete and
release check the token, so a reviewer whose lease was reaped cannot finish the task
that someone else now holds. Redis is hot state: ``enqueue`` is idempotent by task id,
so the queues can be rebuilt by replaying ``review.tasks`` from Kafka.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from redis.asyncio import Redis

LEVELS = ("L1", "L2", "L3")
TIER_CLASS = {"critical": 0, "high": 1, "medium": 2, "low": 3}
CLASS_WIDTH = 10**13
GENERAL_SKILL = "general"
DONE_TTL_SECONDS = 7 * 24 * 3600
PEEK_PER_BUCKET = 8

_CLAIM = """
local ns, now, lease_ms, reviewer = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local leases = ns .. ':leases'
-- 1. return expired leases to their buckets
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 256)
for _, id in ipairs(expired) do
  local tkey = ns .. ':task:' .. id
  local bucket, score = unpack(redis.call('HMGET', tkey, 'bucket', 'score'))
  if bucket then
    redis.call('ZADD', ns .. ':q:' .. bucket, score, id)
    redis.call('HSET', tkey, 'state', 'queued', 'owner', '', 'expires', 0)
  end
  redis.call('ZREM', leases, id)
end
-- 2. best head among the reviewer's buckets, skipping tasks this reviewer already decided
local best_id, best_score, best_bucket = nil, nil, nil
for i = 5, #ARGV do
  local entries = redis.call('ZRANGE', ns .. ':q:' .. ARGV[i], 0, PEEK_LAST, 'WITHSCORES')
  for j = 1, #entries, 2 do
    local id, score = entries[j], tonumber(entries[j + 1])
    if best_score ~= nil and score >= best_score then break end
    local excluded = redis.call('HGET', ns .. ':task:' .. id, 'deciders') or ''
    if not string.find(excluded, '|' .. reviewer .. '|', 1, true) then
      best_id, best_score, best_bucket = id, score, ARGV[i]
      break
    end
  end
end
if not best_id then return nil end
-- 3. lease it with a fresh fencing token
local fence = redis.call('INCR', ns .. ':fence')
local expires = now + lease_ms
redis.call('ZREM', ns .. ':q:' .. best_bucket, best_id)
redis.call('ZADD', leases, expires, best_id)
local tkey = ns .. ':task:' .. best_id
redis.call('HSET', tkey, 'state', 'leased', 'owner', reviewer, 'fence', fence, 'expires', expires)
return {best_id, fence, expires, redis.call('HGET', tkey, 'payload')}
""".replace("PEEK_LAST", str(PEEK_PER_BUCKET - 1))

_CHECK_LEASE = """
local function held(tkey, reviewer, fence, now)
  local owner, f, state, expires = unpack(redis.call('HMGET', tkey, 'owner', 'fence', 'state', 'expires'))
  return state == 'leased' and owner == reviewer and f == fence and tonumber(expires) > now
end
"""

_RENEW = (
    _CHECK_LEASE
    + """
local ns, id, reviewer, fence, now, lease_ms = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local tkey = ns .. ':task:' .. id
if not held(tkey, reviewer, fence, now) then return 0 end
redis.call('HSET', tkey, 'expires', now + lease_ms)
redis.call('ZADD', ns .. ':leases', now + lease_ms, id)
return now + lease_ms
"""
)

_FINISH = (
    _CHECK_LEASE
    + """
-- mode 'done': task finished; 'requeue': back to a bucket (release, next approval, escalation)
local ns, id, reviewer, fence, now, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local tkey = ns .. ':task:' .. id
if not held(tkey, reviewer, fence, now) then return 0 end
redis.call('ZREM', ns .. ':leases', id)
if mode == 'done' then
  redis.call('HSET', tkey, 'state', 'done', 'owner', '', 'payload', '')
  redis.call('EXPIRE', tkey, tonumber(ARGV[7]))
  return 1
end
local bucket, score, decider = ARGV[7], ARGV[8], ARGV[9]
if bucket == '' then bucket = redis.call('HGET', tkey, 'bucket') end
if score == '' then score = redis.call('HGET', tkey, 'score') end
if decider ~= '' then
  local d = redis.call('HGET', tkey, 'deciders') or '|'
  redis.call('HSET', tkey, 'deciders', d .. decider .. '|')
end
redis.call('HSET', tkey, 'state', 'queued', 'owner', '', 'expires', 0, 'bucket', bucket, 'score', score)
redis.call('SADD', ns .. ':buckets', bucket)
redis.call('ZADD', ns .. ':q:' .. bucket, score, id)
return 1
"""
)

_ENQUEUE = """
local ns, id, bucket, score, payload = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local tkey = ns .. ':task:' .. id
if redis.call('EXISTS', tkey) == 1 then return 0 end
redis.call('HSET', tkey, 'payload', payload, 'bucket', bucket, 'score', score,
           'state', 'queued', 'owner', '', 'fence', 0, 'expires', 0, 'deciders', '|')
redis.call('SADD', ns .. ':buckets', bucket)
redis.call('ZADD', ns .. ':q:' .. bucket, score, id)
return 1
"""


def bucket_name(level: str, skill: str, language: str) -> str:
    return f"{level}:{skill}:{language}"


def score_for(tier: str, deadline: datetime) -> int:
    return TIER_CLASS[tier] * CLASS_WIDTH + int(deadline.timestamp() * 1000)


@dataclass(frozen=True)
class Reviewer:
    """What the queue needs to know of a reviewer to pick tasks they may take."""

    reviewer_id: str
    level: Literal["L1", "L2", "L3"]
    skills: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("en",)

    def buckets(self) -> list[str]:
        """Bounded: levels at or below theirs x their skills (+general) x languages."""
        levels = LEVELS[: LEVELS.index(self.level) + 1]
        skills = (GENERAL_SKILL, *[s for s in self.skills if s != GENERAL_SKILL])
        return [
            bucket_name(lv, s, lang) for lv in levels for s in skills for lang in self.languages
        ]


@dataclass(frozen=True)
class Claim:
    task_id: str
    fence: str
    lease_expires_ms: int
    payload: str


class ReviewQueue:
    """Async Redis adapter for the review queues; all mutations are single Lua calls."""

    def __init__(self, redis: Redis, namespace: str = "hitl") -> None:
        self.redis = redis
        self.ns = "{" + namespace + "}"
        self._claim = redis.register_script(_CLAIM)
        self._renew = redis.register_script(_RENEW)
        self._finish = redis.register_script(_FINISH)
        self._enqueue = redis.register_script(_ENQUEUE)

    @staticmethod
    def _now_ms() -> int:
        return int(time.time() * 1000)

    async def enqueue(self, task_id: str, *, bucket: str, score: int, payload: str) -> bool:
        """Queue a task once; a replayed or redelivered task is a no-op (returns False)."""
        added = await self._enqueue(args=[self.ns, task_id, bucket, score, payload])
        return bool(added)

    async def claim(
        self, reviewer: Reviewer, *, lease_seconds: float, now_ms: int | None = None
    ) -> Claim | None:
        result = await self._claim(
            args=[
                self.ns,
                now_ms if now_ms is not None else self._now_ms(),
                int(lease_seconds * 1000),
                reviewer.reviewer_id,
                *reviewer.buckets(),
            ]
        )
        if not result:
            return None
        task_id, fence, expires, payload = result
        return Claim(
            task_id=_text(task_id),
            fence=str(fence),
            lease_expires_ms=int(expires),
            payload=_text(payload),
        )

    async def renew(
        self, task_id: str, reviewer_id: str, fence: str, *, lease_seconds: float
    ) -> int:
        """Extend a held lease; returns the new expiry in ms, or 0 if no longer held."""
        return int(
            await self._renew(
                args=[
                    self.ns,
                    task_id,
                    reviewer_id,
                    fence,
                    self._now_ms(),
                    int(lease_seconds * 1000),
                ]
            )
        )

    async def complete(self, task_id: str, reviewer_id: str, fence: str) -> bool:
        return bool(
            await self._finish(
                args=[
                    self.ns,
                    task_id,
                    reviewer_id,
                    fence,
                    self._now_ms(),
                    "done",
                    DONE_TTL_SECONDS,
                ]
            )
        )

    async def requeue(
        self,
        task_id: str,
        reviewer_id: str,
        fence: str,
        *,
        bucket: str | None = None,
        score: int | None = None,
        decided: bool = False,
    ) -> bool:
        """Give a held task back: unclaimed, to the next approver, or escalated."""
        return bool(
            await self._finish(
                args=[
                    self.ns,
                    task_id,
                    reviewer_id,
                    fence,
                    self._now_ms(),
                    "requeue",
                    bucket or "",
                    "" if score is None else score,
                    reviewer_id if decided else "",
                ]
            )
        )

    async def task(self, task_id: str) -> dict[str, str]:
        raw: dict[Any, Any] = await self.redis.hgetall(f"{self.ns}:task:{task_id}")
        return {_text(k): _text(v) for k, v in raw.items()}

    async def depths(self) -> dict[str, int]:
        buckets = sorted(_text(b) for b in await self.redis.smembers(f"{self.ns}:buckets"))
        async with self.redis.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.zcard(f"{self.ns}:q:{bucket}")
            counts = await pipe.execute()
        return dict(zip(buckets, (int(c) for c in counts), strict=True))

    async def leased(self) -> int:
        return int(await self.redis.zcard(f"{self.ns}:leases"))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
