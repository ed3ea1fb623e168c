"""A reviewer who vanishes loses the task: it returns within the lease TTL plus one second."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hitl_shared.queue import Reviewer, ReviewQueue, bucket_name, score_for

pytestmark = pytest.mark.integration

LEASE_SECONDS = 1.0


async def test_vanished_reviewer_loses_the_task_and_cannot_finish_it_later(redis, unique):
    queue = ReviewQueue(redis, f"lease-{unique}")
    deadline = datetime.now(UTC) + timedelta(hours=1)
    await queue.enqueue(
        "task-1",
        bucket=bucket_name("L1", "general", "en"),
        score=score_for("high", deadline),
        payload='{"n": 1}',
    )
    ghost = Reviewer("ghost", "L1")
    other = Reviewer("other", "L2")

    first = await queue.claim(ghost, lease_seconds=LEASE_SECONDS)
    assert first is not None and first.task_id == "task-1"
    assert await queue.claim(other, lease_seconds=LEASE_SECONDS) is None  # still leased

    await asyncio.sleep(LEASE_SECONDS + 1.0)
    second = await queue.claim(other, lease_seconds=30)
    assert second is not None and second.task_id == "task-1"
    assert second.fence != first.fence

    # the ghost comes back: its old fencing token no longer completes or renews anything
    assert not await queue.complete("task-1", "ghost", first.fence)
    assert await queue.renew("task-1", "ghost", first.fence, lease_seconds=30) == 0
    assert await queue.complete("task-1", "other", second.fence)
    assert await queue.claim(ghost, lease_seconds=30) is None
