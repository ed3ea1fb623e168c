"""Queue overview for admins: depth, oldest age and SLA breaches per bucket, workload.

Read straight from the queue's Redis layout with a bounded number of pipelined calls:
a bucket's score is ``tier class * 1e13 + SLA deadline ms``, so the breached tasks of
one tier are one ``ZCOUNT`` and the most overdue (oldest) one is the range's head.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from hitl_review_api.auth import TokenStore
from hitl_shared.queue import CLASS_WIDTH, TIER_CLASS, ReviewQueue

MAX_BUCKETS = 200
MAX_LEASES = 500


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def overview(queue: ReviewQueue, tokens: TokenStore) -> dict[str, Any]:
    redis: Redis = queue.redis
    ns = queue.ns
    now_ms = int(time.time() * 1000)
    buckets = sorted(_text(b) for b in await redis.smembers(f"{ns}:buckets"))[:MAX_BUCKETS]
    tiers = sorted(TIER_CLASS.items(), key=lambda kv: kv[1])
    async with redis.pipeline(transaction=False) as pipe:
        for bucket in buckets:
            key = f"{ns}:q:{bucket}"
            pipe.zcard(key)
            for _, cls in tiers:
                low = cls * CLASS_WIDTH
                pipe.zcount(key, low, low + CLASS_WIDTH - 1)
                pipe.zcount(key, low, low + now_ms)
                pipe.zrangebyscore(key, low, low + CLASS_WIDTH - 1, start=0, num=1)
        answers = await pipe.execute()
    per = 1 + 3 * len(tiers)
    rows: list[dict[str, Any]] = []
    heads: list[tuple[dict[str, Any], str]] = []
    for n, bucket in enumerate(buckets):
        chunk = answers[n * per : (n + 1) * per]
        row: dict[str, Any] = {"bucket": bucket, "depth": int(chunk[0]), "tiers": {}, "breached": 0}
        for t, (tier, _) in enumerate(tiers):
            count, breached, head = chunk[1 + 3 * t : 4 + 3 * t]
            if int(count):
                row["tiers"][tier] = {"depth": int(count), "breached": int(breached)}
                row["breached"] += int(breached)
                heads.append((row, _text(head[0])))
        row["oldest_age_s"] = None
        rows.append(row)
    if heads:
        payloads = await _payloads(redis, ns, [task_id for _, task_id in heads])
        for (row, _), payload in zip(heads, payloads, strict=True):
            age = _age_s(payload, now_ms)
            if age is not None and (row["oldest_age_s"] is None or age > row["oldest_age_s"]):
                row["oldest_age_s"] = age
    return {
        "generated_ms": now_ms,
        "buckets": rows,
        "total_depth": sum(r["depth"] for r in rows),
        "total_breached": sum(r["breached"] for r in rows),
        "leased": await queue.leased(),
        "reviewers": await workload(queue, tokens),
    }


async def _payloads(redis: Redis, ns: str, task_ids: list[str]) -> list[Any]:
    async with redis.pipeline(transaction=False) as pipe:
        for task_id in task_ids:
            pipe.hget(f"{ns}:task:{task_id}", "payload")
        return list(await pipe.execute())


def _age_s(payload: Any, now_ms: int) -> float | None:
    if not payload:
        return None
    try:
        created = datetime.fromisoformat(json.loads(payload)["occurred_at"])
    except (ValueError, KeyError, TypeError):
        return None
    return round(now_ms / 1000 - created.timestamp(), 1)


async def workload(queue: ReviewQueue, tokens: TokenStore) -> list[dict[str, Any]]:
    """Per reviewer: tasks held now, decisions made, verdict mix, time spent."""
    redis: Redis = queue.redis
    ns = queue.ns
    leased_ids = [_text(i) for i in await redis.zrange(f"{ns}:leases", 0, MAX_LEASES - 1)]
    owners: dict[str, int] = {}
    if leased_ids:
        async with redis.pipeline(transaction=False) as pipe:
            for task_id in leased_ids:
                pipe.hget(f"{ns}:task:{task_id}", "owner")
            for owner in await pipe.execute():
                if owner:
                    owners[_text(owner)] = owners.get(_text(owner), 0) + 1
    people = [p for p in await tokens.all() if p.role == "reviewer"]
    async with redis.pipeline(transaction=False) as pipe:
        for person in people:
            pipe.hgetall(f"{ns}:workload:{person.reviewer_id}")
        counters = await pipe.execute()
    out = []
    for person, raw in zip(people, counters, strict=True):
        stats = {_text(k): float(_text(v)) for k, v in raw.items()}
        decisions = int(stats.get("decisions", 0))
        out.append(
            {
                "reviewer_id": person.reviewer_id,
                "level": person.level,
                "skills": list(person.skills),
                "active_claims": owners.get(person.reviewer_id, 0),
                "decisions": decisions,
                "verdicts": {
                    v: int(stats.get(v, 0)) for v in ("approve", "edit", "reject", "escalate")
                },
                "avg_time_s": round(stats.get("time_spent_s", 0.0) / decisions, 1)
                if decisions
                else None,
            }
        )
    return out
