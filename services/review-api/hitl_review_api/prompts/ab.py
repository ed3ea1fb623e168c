"""A/B verdicts for a template, computed by the feedback service's own comparison.

The numbers (error and modification rate, significance) come from
``hitl_feedback.ab.compare_prompt_versions`` over the annotations the feedback service
keeps in Redis, so the registry and the feedback report can never disagree.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from hitl_feedback.ab import compare_prompt_versions
from hitl_feedback.annotations import Annotation
from hitl_feedback.store import FeedbackStore
from hitl_review_api.prompts.domain import Refused, TemplateState
from hitl_shared.prompts import RED_TEAM_USE_CASE


def arms(state: TemplateState, a: str | None, b: str | None) -> tuple[str, str]:
    """A = production (or the given version), B = the experiment's other arm (or given)."""
    production = state.labels.get("production")
    a = a or production
    if b is None and state.experiment is not None:
        b = next((v for v in sorted(state.experiment.split) if v != a), None)
    b = b or state.labels.get("candidate")
    if a is None or b is None or a == b:
        raise Refused(409, "name two different versions (a, b): no experiment or candidate")
    for version in (a, b):
        if version not in state.versions:
            raise Refused(404, f"no version {version!r}")
    return a, b


def verdict_for(
    annotations: list[Annotation], state: TemplateState, a: str, b: str, *, min_items: int
) -> dict[str, Any]:
    real = [x for x in annotations if x.use_case != RED_TEAM_USE_CASE]  # attacks skew arms
    result = compare_prompt_versions(real, a, b, template_id=state.template_id, min_items=min_items)
    return {**result, "winner": winner(result)}


def winner(result: dict[str, Any]) -> str | None:
    """The version with a significantly lower error (else modification) rate, if any."""
    for metric in ("error_rate", "modification_rate"):
        entry = result["metrics"][metric]
        if entry.get("significant"):
            return str(entry["lower"])
    return None


async def compare(
    redis: Redis,
    namespace: str,
    state: TemplateState,
    a: str | None,
    b: str | None,
    *,
    min_items: int = 20,
) -> dict[str, Any]:
    version_a, version_b = arms(state, a, b)
    annotations = await FeedbackStore(redis, namespace).annotations()
    return verdict_for(annotations, state, version_a, version_b, min_items=min_items)
