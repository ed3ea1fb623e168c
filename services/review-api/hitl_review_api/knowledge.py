"""Similar past cases shown beside a task: recent final decisions of the same app and use case.

A capped Redis list per ``app:use_case`` keeps short summaries of final decisions;
similarity is the overlap of flag categories (then recency). It is a reviewer aid, not
the feedback service's edge-case knowledge base, which can replace it behind ``similar``.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from hitl_shared.events import ReviewDecision, ReviewTask

KEEP = 200
SHOW = 5
EXCERPT = 280


class KnowledgeBase:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.ns = "{" + namespace + "}"

    def _key(self, task: ReviewTask) -> str:
        output = task.screened.output
        return f"{self.ns}:kb:{output.app}:{output.use_case}"

    async def remember(self, task: ReviewTask, decision: ReviewDecision) -> None:
        summary = {
            "item_id": task.item_id,
            "verdict": decision.verdict,
            "labels": list(decision.labels),
            "reason": decision.reason,
            "categories": sorted({f.category for f in task.screened.flags}),
            "excerpt": task.screened.output.output_text[:EXCERPT],
            "decided_by": decision.reviewer_id,
            "at": decision.occurred_at.isoformat(),
        }
        key = self._key(task)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(key, json.dumps(summary, ensure_ascii=False))
            pipe.ltrim(key, 0, KEEP - 1)
            await pipe.execute()

    async def similar(self, task: ReviewTask) -> list[dict[str, Any]]:
        mine = {f.category for f in task.screened.flags}
        raws = await self.redis.lrange(self._key(task), 0, KEEP - 1)
        cases = [json.loads(r) for r in raws]
        cases = [c for c in cases if c["item_id"] != task.item_id]
        ranked = sorted(
            enumerate(cases), key=lambda ic: (-len(mine & set(ic[1]["categories"])), ic[0])
        )
        return [case for _, case in ranked[:SHOW]]
