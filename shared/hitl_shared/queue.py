"""Redis priority queues of review tasks, with leases, fencing tokens and escalation.

Layout (every key under one hash tag, so a Redis Cluster keeps them on one slot):

- ``{ns}:q:<level>:<skill>:<lang>``  sorted set per qualification bucket; score =
  priority class (tier) * 1e13 + SLA deadline in ms, so lower is more urgent and,
  within a tier, the task due first (hence the oldest) comes first;
- ``{ns}:age:<bucket>``  the same members scored by first-queued time (oldest-age gauges);
- ``{ns}:task:<task_id>``  hash: payload, bucket, score, since, state, owner, fence,
  expiry, deciders, escalations;
- ``{ns}:leases``  sorted set of leased task ids by lease expiry;
- ``{ns}:deadlines``  sorted set of open task ids by the time they next escalate;
- ``{ns}:buckets`` set of bucket names ever used (overview, escalation sweeps);
- ``{ns}:fence``  counter handing out fencing tokens.

Claim is one Lua script: reap expired leases, read the head of each bucket the reviewer
may take (a bounded set: levels x skills x languages), pick the best, lease it with a new
fencing token; O(log n) in the queue length. Renew, complete and release check the
token, so a reviewer whose lease was reaped cannot finish the task that someone else now
holds. ``escalate_overdue`` moves tasks past their deadline one level up (L1 -> L2 ->
L3, and a specialist task nobody took at L3 to the L3 generalists). Redis is hot state: ``enqueue`` is idempotent by task id and ``settle`` applies a
recorded decision, so the queues can be rebuilt by replaying Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
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
ESCALATION_STEP_MS = 15 * 60 * 1000
SWEEP_LIMIT = 500

_PRELUDE = """
local function push(ns, bucket, id, score, since)
  redis.call('ZADD', ns .. ':q:' .. bucket, score, id)
  redis.call('ZADD', ns .. ':age:' .. bucket, since or 0, id)
end
local function pull(ns, bucket, id)
  redis.call('ZREM', ns .. ':q:' .. bucket, id)
  redis.call('ZREM', ns .. ':age:' .. bucket, id)
end
"""

_CLAIM = (
    _PRELUDE
    + """
local ns, now, lease_ms, reviewer = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local leases = ns .. ':leases'
-- 1. return expired leases to their buckets
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 256)
for _, id in ipairs(expired) do
  local tkey = ns .. ':task:' .. id
  local bucket, score, since = unpack(redis.call('HMGET', tkey, 'bucket', 'score', 'since'))
  if bucket then
    push(ns, bucket, id, score, since)
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
pull(ns, best_bucket, best_id)
redis.call('ZADD', leases, expires, best_id)
local tkey = ns .. ':task:' .. best_id
redis.call('HSET', tkey, 'state', 'leased', 'owner', reviewer, 'fence', fence, 'expires', expires)
return {best_id, fence, expires, redis.call('HGET', tkey, 'payload')}
"""
).replace("PEEK_LAST", str(PEEK_PER_BUCKET - 1))

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
    _PRELUDE
    + _CHECK_LEASE
    + """
-- mode 'done': task finished; 'requeue': back to a bucket (release, next approval, escalation)
local ns, id, reviewer, fence, now, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local tkey = ns .. ':task:' .. id
if not held(tkey, reviewer, fence, now) then return 0 end
redis.call('ZREM', ns .. ':leases', id)
if mode == 'done' then
  redis.call('ZREM', ns .. ':deadlines', id)
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
push(ns, bucket, id, score, redis.call('HGET', tkey, 'since'))
return 1
"""
)

_ENQUEUE = (
    _PRELUDE
    + """
local ns, id, bucket, score, payload, since, due = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local tkey = ns .. ':task:' .. id
if redis.call('EXISTS', tkey) == 1 then return 0 end
redis.call('HSET', tkey, 'payload', payload, 'bucket', bucket, 'score', score, 'since', since,
           'state', 'queued', 'owner', '', 'fence', 0, 'expires', 0, 'deciders', '|')
redis.call('SADD', ns .. ':buckets', bucket)
push(ns, bucket, id, score, since)
redis.call('ZADD', ns .. ':deadlines', due, id)
return 1
"""
)

_ESCALATE = (
    _PRELUDE
    + """
-- move queued tasks past their deadline one level up; the top level is marked breached
local ns, now, limit, step = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local deadlines = ns .. ':deadlines'
local nextlevel = {L1 = 'L2', L2 = 'L3'}
local moved = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', deadlines, '-inf', now, 'LIMIT', 0, limit)) do
  local tkey = ns .. ':task:' .. id
  local state, bucket, score, since = unpack(redis.call('HMGET', tkey, 'state', 'bucket', 'score', 'since'))
  if state == 'queued' then
    local level, rest = string.match(bucket, '^(L%d):(.*)$')
    local up = level and nextlevel[level]
    local target = nil
    if up then
      target = up .. ':' .. rest
    elseif level and not string.match(rest, '^general:') then
      -- no specialist took it even at the top level: any L3 may now
      target = level .. ':general:' .. string.match(rest, ':(.*)$')
    end
    if target then
      pull(ns, bucket, id)
      push(ns, target, id, score, since)
      redis.call('SADD', ns .. ':buckets', target)
      redis.call('HSET', tkey, 'bucket', target)
      redis.call('HINCRBY', tkey, 'escalations', 1)
      redis.call('ZADD', deadlines, now + step, id)
      table.insert(moved, id)
      table.insert(moved, target)
    else
      redis.call('HSET', tkey, 'breached', 1)
      redis.call('ZREM', deadlines, id)
    end
  elseif state == 'leased' then
    redis.call('ZADD', deadlines, now + step, id)
  else
    redis.call('ZREM', deadlines, id)
  end
end
return moved
"""
)

_SETTLE = (
    _PRELUDE
    + """
-- replay of a recorded decision (rebuild): no lease needed, idempotent
local ns, id, decider, final, bucket, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local tkey = ns .. ':task:' .. id
local state, current, score, since, deciders = unpack(redis.call('HMGET', tkey, 'state', 'bucket', 'score', 'since', 'deciders'))
if not state then return 0 end
if state == 'done' then return 1 end
redis.call('ZREM', ns .. ':leases', id)
if current then pull(ns, current, id) end
if final == '1' then
  redis.call('ZREM', ns .. ':deadlines', id)
  redis.call('HSET', tkey, 'state', 'done', 'owner', '', 'payload', '')
  redis.call('EXPIRE', tkey, ttl)
  return 1
end
deciders = deciders or '|'
if decider ~= '' and not string.find(deciders, '|' .. decider .. '|', 1, true) then
  redis.call('HSET', tkey, 'deciders', deciders .. decider .. '|')
end
if bucket == '' then bucket = current end
redis.call('SADD', ns .. ':buckets', bucket)
redis.call('HSET', tkey, 'state', 'queued', 'owner', '', 'expires', 0, 'bucket', bucket)
push(ns, bucket, id, score, since)
return 1
"""
)


def bucket_name(level: str, skill: str, language: str) -> str:
    return f"{level}:{skill}:{language}"


def next_level(level: str) -> str:
    """The escalation path: L1 -> L2 -> L3 (L3 stays)."""
    return LEVELS[min(LEVELS.index(level) + 1, len(LEVELS) - 1)]


def score_for(tier: str, deadline: datetime) -> int:
    return TIER_CLASS[tier] * CLASS_WIDTH + int(deadline.timestamp() * 1000)


def deadline_ms_of(score: int) -> int:
    """The SLA deadline a score encodes (the part below the tier class)."""
    return score % CLASS_WIDTH


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


@dataclass(frozen=True)
class QueuedTask:
    """One task to enqueue: where it waits, how urgent it is, and its payload."""

    task_id: str
    bucket: str
    score: int
    payload: str
    since_ms: int | None = None


@dataclass(frozen=True)
class BucketStats:
    """Dashboard gauges of one bucket."""

    depth: int
    oldest_age_s: float


@dataclass(frozen=True)
class Escalation:
    task_id: str
    bucket: str


class ReviewQueue:
    """Async Redis adapter for the review queues; all mutations are single Lua calls."""

    def __init__(self, redis: Redis, namespace: str = "hitl") -> None:
        self.redis = redis
        self.ns = "{" + namespace + "}"
        self._claim = redis.register_script(_CLAIM)
        self._renew = redis.register_script(_RENEW)
        self._finish = redis.register_script(_FINISH)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._escalate = redis.register_script(_ESCALATE)
        self._settle = redis.register_script(_SETTLE)

    @staticmethod
    def _now_ms() -> int:
        return int(time.time() * 1000)

    def _enqueue_args(self, task: QueuedTask) -> list[Any]:
        since = task.since_ms if task.since_ms is not None else self._now_ms()
        due = deadline_ms_of(task.score)
        return [self.ns, task.task_id, task.bucket, task.score, task.payload, since, due]

    async def enqueue(
        self, task_id: str, *, bucket: str, score: int, payload: str, since_ms: int | None = None
    ) -> bool:
        """Queue a task once; a replayed or redelivered task is a no-op (returns False)."""
        task = QueuedTask(task_id, bucket, score, payload, since_ms)
        return bool(await self._enqueue(args=self._enqueue_args(task)))

    async def enqueue_many(self, tasks: Iterable[QueuedTask], *, chunk: int = 2000) -> int:
        """Pipelined ``enqueue`` (rebuilds, benchmarks); returns how many were new."""
        added = 0
        batch: list[QueuedTask] = []

        async def flush() -> int:
            async with self.redis.pipeline(transaction=False) as pipe:
                for task in batch:
                    await self._enqueue(args=self._enqueue_args(task), client=pipe)
                results = await pipe.execute()
            batch.clear()
            return sum(int(r) for r in results)

        for task in tasks:
            batch.append(task)
            if len(batch) >= chunk:
                added += await flush()
        if batch:
            added += await flush()
        return added

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
        return await self._end_lease(task_id, reviewer_id, fence, "done", DONE_TTL_SECONDS)

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
        return await self._end_lease(
            task_id,
            reviewer_id,
            fence,
            "requeue",
            bucket or "",
            "" if score is None else score,
            reviewer_id if decided else "",
        )

    async def _end_lease(
        self, task_id: str, reviewer_id: str, fence: str, mode: str, *rest: str | int
    ) -> bool:
        """The finish script for a lease the reviewer holds: ``done`` or ``requeue``."""
        args = [self.ns, task_id, reviewer_id, fence, self._now_ms(), mode, *rest]
        return bool(await self._finish(args=args))

    async def escalate_overdue(
        self,
        *,
        now_ms: int | None = None,
        step_ms: int = ESCALATION_STEP_MS,
        limit: int = SWEEP_LIMIT,
    ) -> list[Escalation]:
        """Move queued tasks past their deadline to the next level's bucket.

        A moved task gets ``step_ms`` more before it moves again; a leased one is looked
        at again after ``step_ms``; one already at L3 is marked ``breached``.
        """
        now = now_ms if now_ms is not None else self._now_ms()
        flat = await self._escalate(args=[self.ns, now, limit, step_ms])
        pairs = [_text(v) for v in flat or ()]
        return [Escalation(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]

    async def settle(
        self, task_id: str, *, reviewer_id: str = "", final: bool, bucket: str | None = None
    ) -> bool:
        """Apply a recorded decision without a lease (rebuild from ``review.decisions``)."""
        return bool(
            await self._settle(
                args=[
                    self.ns,
                    task_id,
                    reviewer_id,
                    "1" if final else "0",
                    bucket or "",
                    DONE_TTL_SECONDS,
                ]
            )
        )

    async def task(self, task_id: str) -> dict[str, str]:
        raw: dict[Any, Any] = await self.redis.hgetall(f"{self.ns}:task:{task_id}")
        return {_text(k): _text(v) for k, v in raw.items()}

    async def buckets(self) -> list[str]:
        return sorted(_text(b) for b in await self.redis.smembers(f"{self.ns}:buckets"))

    async def depths(self) -> dict[str, int]:
        buckets = await self.buckets()
        async with self.redis.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.zcard(f"{self.ns}:q:{bucket}")
            counts = await pipe.execute()
        return dict(zip(buckets, (int(c) for c in counts), strict=True))

    async def stats(self, *, now_ms: int | None = None) -> dict[str, BucketStats]:
        """Depth and age of the oldest waiting task per bucket, for dashboards."""
        now = now_ms if now_ms is not None else self._now_ms()
        buckets = await self.buckets()
        async with self.redis.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.zcard(f"{self.ns}:q:{bucket}")
                pipe.zrange(f"{self.ns}:age:{bucket}", 0, 0, withscores=True)
            replies = await pipe.execute()
        out: dict[str, BucketStats] = {}
        for i, bucket in enumerate(buckets):
            depth, head = int(replies[2 * i]), replies[2 * i + 1]
            oldest = max(0.0, (now - float(head[0][1])) / 1000) if head else 0.0
            out[bucket] = BucketStats(depth=depth, oldest_age_s=round(oldest, 3))
        return out

    async def overdue(self, *, now_ms: int | None = None) -> int:
        """Open tasks past their (escalation) deadline."""
        now = now_ms if now_ms is not None else self._now_ms()
        return int(await self.redis.zcount(f"{self.ns}:deadlines", "-inf", now))

    async def leased(self) -> int:
        return int(await self.redis.zcard(f"{self.ns}:leases"))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
