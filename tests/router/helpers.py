"""Builders for router tests: screened items with a known routing decision."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from hitl_router.domain import decide, default_policy
from hitl_shared.events import Flag, ReviewDecision, RoutingDecision, ScreenedOutput
from tests.factories import flag, llm_output
from tests.support import read_until

CARD = flag(start=10, end=29)


def screened(item_id: str, *, flags: tuple[Flag, ...] = (), **overrides: Any) -> ScreenedOutput:
    return ScreenedOutput(item_id=item_id, output=llm_output(item_id, **overrides), flags=flags)


def pick(prefix: str, want: Callable[[RoutingDecision], bool], **overrides: Any) -> ScreenedOutput:
    """The first item id under ``prefix`` whose default-policy decision satisfies ``want``."""
    policy = default_policy()
    for n in range(5000):
        candidate = screened(f"{prefix}-{n}", **overrides)
        if want(decide(candidate, policy)):
            return candidate
    raise AssertionError(f"no item under {prefix} fits")


def verdict(
    item: ScreenedOutput, verdict: str, *, reviewer: str = "rita", **fields: Any
) -> ReviewDecision:
    defaults: dict[str, Any] = {
        "item_id": item.item_id,
        "task_id": f"task-{item.item_id}",
        "reviewer_id": reviewer,
        "reviewer_level": "L2",
        "verdict": verdict,
        "original_text": item.output.output_text,
    }
    if verdict in ("reject", "escalate"):
        defaults["reason"] = "not acceptable"
    defaults.update(fields)
    return ReviewDecision(**defaults)


# Every record of ``topic`` once ``done`` holds and nothing more came for ``quiet`` seconds,
# so a late duplicate would be seen.
read_settled = partial(read_until, timeout=60.0, quiet=1.5, failure="not settled")


async def until(
    probe: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], timeout: float = 60.0
) -> Any:
    """Poll ``probe`` until ``ok`` holds (state in Redis has no change feed to await)."""
    async with asyncio.timeout(timeout):
        while True:
            value = await probe()
            if ok(value):
                return value
            await asyncio.sleep(0.1)
