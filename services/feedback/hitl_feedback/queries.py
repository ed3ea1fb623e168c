"""Read side for the dashboard: every feedback metric as one JSON-ready dict.

``metrics_snapshot`` is what the review API serves; it reads the feedback service's
Redis state and computes with the same pure functions the CLI and tests use.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from hitl_feedback.config import FeedbackConfig
from hitl_feedback.metrics import DIMENSIONS, as_datetime, report, user_satisfaction
from hitl_feedback.sampling import TIER_FLOORS, error_rate_bound, review_rate
from hitl_feedback.store import FeedbackStore


async def metrics_snapshot(
    redis: Redis,
    namespace: str,
    *,
    config: FeedbackConfig | None = None,
    group_by: tuple[str, ...] = tuple(DIMENSIONS),
    **filters: Any,
) -> dict[str, Any]:
    """Metrics for one slice; filters: app, use_case, tier, model, prompt_template_id,
    prompt_version, reviewer, since, until (ISO time or datetime).

    ``namespace`` is the Redis prefix (``settings.redis_prefix``), with or without braces.
    """
    config = config or FeedbackConfig()
    store = FeedbackStore(redis, namespace)
    annotations = await store.annotations(
        since=as_datetime(filters.get("since")), until=as_datetime(filters.get("until"))
    )
    snapshot = report(annotations, config, group_by=group_by, **filters)
    segments = await store.segments()
    snapshot["sampling"] = {
        segment: {
            "reviewed": evidence.reviewed,
            "errors": evidence.errors,
            "error_rate_upper": error_rate_bound(evidence, config.credibility),
            "review_rate": review_rate(tier, evidence, config),
        }
        for segment, evidence in segments.items()
        if (tier := segment.rsplit(":", 1)[-1]) in TIER_FLOORS
    }
    snapshot["user_feedback"] = user_satisfaction(await store.user_feedback())
    snapshot["releases"] = await store.releases()
    snapshot["counters"] = await store.counters()
    return snapshot
