"""Similar past cases shown beside a task: recent final decisions of the same app and use case.

A capped Redis list per app, use case and flag category (``{ns}:review-kb:...``) keeps
short summaries of final decisions; similarity is the overlap of flag categories (then
recency), read with one pipelined call of a few short ranges. It is a reviewer aid, not
the feedback service's edge-case knowledge base, which can replace it behind ``similar``.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from hitl_shared.events import ReviewDecision, ReviewTask

KEEP = 20  # per app, use case and flag category
SHOW = 5
EXCERPT = 280
NO_FLAGS = "_none"


class KnowledgeBase:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.ns = "{" + namespace + "}"

    def _keys(self, task: ReviewTask) -> list[str]:
        """One short list per flag category, so a lookup reads a bounded few entries."""
        output = task.screened.output
        categories = sorted({f.category for f in task.screened.flags}) or [NO_FLAGS]
        return [f"{self.ns}:review-kb:{output.app}:{output.use_case}:{c}" for c in categories[:4]]

    def remember(self, pipe: Pipeline, task: ReviewTask, decision: ReviewDecision) -> None:
        """Queue the writes on the caller's pipeline (one round trip with its other writes)."""
        summary = json.dumps(
            {
                "item_id": task.item_id,
                "verdict": decision.verdict,
                "labels": list(decision.labels),
                "reason": decision.reason,
                "categories": sorted({f.category for f in task.screened.flags}),
                "excerpt": task.screened.output.output_text[:EXCERPT],
                "decided_by": decision.reviewer_id,
                "at": decision.occurred_at.isoformat(),
            },
            ensure_ascii=False,
        )
        for key in self._keys(task):
            pipe.lpush(key, summary)
            pipe.ltrim(key, 0, KEEP - 1)

    def lookup(self, pipe: Pipeline, task: ReviewTask) -> int:
        """Queue the reads on the caller's pipeline; returns how many results to pass back."""
        keys = self._keys(task)
        for key in keys:
            pipe.lrange(key, 0, SHOW - 1)
        return len(keys)

    def similar(self, task: ReviewTask, lists: list[list[bytes]]) -> list[dict[str, Any]]:
        """Recent final decisions sharing the most flag categories with this task."""
        mine = {f.category for f in task.screened.flags}
        seen: dict[str, tuple[int, int, dict[str, Any]]] = {}
        for raws in lists:
            for recency, raw in enumerate(raws):
                case = json.loads(raw)
                if case["item_id"] == task.item_id or case["item_id"] in seen:
                    continue
                overlap = len(mine & set(case["categories"]))
                seen[case["item_id"]] = (-overlap, recency, case)
        ranked = sorted(seen.values(), key=lambda entry: entry[:2])
        return [case for _, _, case in ranked[:SHOW]]
