"""The Redis review queue on a real redis-server: priority, qualification, leases,
escalation, gauges and replay."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from hitl_shared.queue import (
    QueuedTask,
    Reviewer,
    ReviewQueue,
    bucket_name,
    next_level,
    score_for,
)

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = int(T0.timestamp() * 1000)


def _score(tier: str, minutes: float) -> int:
    return score_for(tier, T0 + timedelta(minutes=minutes))


@pytest.fixture
def queue(redis, unique) -> ReviewQueue:
    return ReviewQueue(redis, f"q{unique}")


async def test_claims_come_most_urgent_first_and_only_to_qualified_reviewers(queue):
    general = bucket_name("L1", "general", "en")
    await queue.enqueue("low", bucket=general, score=_score("low", 60), payload="l", since_ms=NOW)
    await queue.enqueue("med-late", bucket=general, score=_score("medium", 90), payload="m2")
    await queue.enqueue("med-soon", bucket=general, score=_score("medium", 30), payload="m1")
    await queue.enqueue(
        "crit-medical",
        bucket=bucket_name("L2", "medical", "en"),
        score=_score("critical", 5),
        payload="c",
    )
    await queue.enqueue(
        "high-de", bucket=bucket_name("L1", "general", "de"), score=_score("high", 5), payload="d"
    )
    assert not await queue.enqueue("low", bucket=general, score=1, payload="dup")

    l1 = Reviewer("ann", "L1")
    order = []
    while (got := await queue.claim(l1, lease_seconds=60, now_ms=NOW)) is not None:
        order.append(got.task_id)
    assert order == ["med-soon", "med-late", "low"]

    generalist_l2 = Reviewer("bo", "L2", languages=("en", "de"))
    assert (await queue.claim(generalist_l2, lease_seconds=60, now_ms=NOW)).task_id == "high-de"
    assert await queue.claim(generalist_l2, lease_seconds=60, now_ms=NOW) is None
    doctor = Reviewer("cy", "L3", skills=("medical",))
    got = await queue.claim(doctor, lease_seconds=60, now_ms=NOW)
    assert got is not None and got.task_id == "crit-medical" and got.payload == "c"


async def test_an_expired_lease_returns_the_task_and_fences_out_the_old_holder(queue):
    now = int(time.time() * 1000)
    await queue.enqueue("t1", bucket="L1:general:en", score=_score("low", 5), payload="p")
    first = await queue.claim(Reviewer("ann", "L1"), lease_seconds=1, now_ms=now - 5000)
    assert first is not None
    assert await queue.claim(Reviewer("bo", "L1"), lease_seconds=60, now_ms=now - 4500) is None
    assert not await queue.renew("t1", "ann", first.fence, lease_seconds=60)  # expired
    second = await queue.claim(Reviewer("bo", "L1"), lease_seconds=60)
    assert second is not None and second.task_id == "t1" and second.fence != first.fence
    assert not await queue.complete("t1", "ann", first.fence)
    assert await queue.renew("t1", "bo", second.fence, lease_seconds=60)
    assert await queue.complete("t1", "bo", second.fence)
    assert (await queue.task("t1"))["state"] == "done"


async def test_overdue_tasks_escalate_one_level_at_a_time(queue):
    await queue.enqueue("late", bucket="L1:general:en", score=_score("medium", 10), payload="p")
    await queue.enqueue("fine", bucket="L1:general:en", score=_score("medium", 120), payload="p")
    await queue.enqueue("busy", bucket="L1:general:en", score=_score("high", 5), payload="p")
    held = await queue.claim(Reviewer("ann", "L1"), lease_seconds=3600, now_ms=NOW)
    assert held is not None and held.task_id == "busy"

    step = 10 * 60 * 1000
    moved = await queue.escalate_overdue(now_ms=NOW + 11 * 60_000, step_ms=step)
    assert [(m.task_id, m.bucket) for m in moved] == [("late", "L2:general:en")]
    assert await queue.claim(Reviewer("bo", "L1"), lease_seconds=60, now_ms=NOW) is not None
    # 'fine' was claimed by bo above (L1); 'late' is now only for L2+
    assert await queue.claim(Reviewer("cy", "L1"), lease_seconds=60, now_ms=NOW) is None

    assert await queue.escalate_overdue(now_ms=NOW + 11 * 60_000 + step - 1, step_ms=step) == []
    again = await queue.escalate_overdue(now_ms=NOW + 11 * 60_000 + step, step_ms=step)
    assert [(m.task_id, m.bucket) for m in again] == [("late", "L3:general:en")]
    top = await queue.escalate_overdue(now_ms=NOW + 11 * 60_000 + 2 * step, step_ms=step)
    assert top == []
    task = await queue.task("late")
    assert task["breached"] == "1" and task["escalations"] == "2"
    got = await queue.claim(Reviewer("dee", "L3"), lease_seconds=60, now_ms=NOW)
    assert got is not None and got.task_id == "late"
    assert next_level("L1") == "L2" and next_level("L3") == "L3"


async def test_a_specialist_task_nobody_takes_falls_back_to_l3_generalists(queue):
    await queue.enqueue("med", bucket="L2:medical:en", score=_score("high", 1), payload="p")
    step = 60_000
    first = await queue.escalate_overdue(now_ms=NOW + 2 * 60_000, step_ms=step)
    assert [m.bucket for m in first] == ["L3:medical:en"]
    assert await queue.claim(Reviewer("gen", "L3"), lease_seconds=60, now_ms=NOW) is None
    second = await queue.escalate_overdue(now_ms=NOW + 2 * 60_000 + step, step_ms=step)
    assert [m.bucket for m in second] == ["L3:general:en"]
    got = await queue.claim(Reviewer("gen", "L3"), lease_seconds=60, now_ms=NOW)
    assert got is not None and got.task_id == "med"


async def test_depth_and_oldest_age_per_bucket(queue):
    await queue.enqueue_many(
        QueuedTask(f"t{i}", "L1:general:en", _score("low", i), "p", since_ms=NOW - i * 1000)
        for i in range(50)
    )
    await queue.enqueue(
        "x", bucket="L2:legal:en", score=_score("high", 1), payload="p", since_ms=NOW
    )
    stats = await queue.stats(now_ms=NOW + 1000)
    assert stats["L1:general:en"].depth == 50
    assert stats["L1:general:en"].oldest_age_s == pytest.approx(50.0)
    assert stats["L2:legal:en"].depth == 1
    assert await queue.depths() == {"L1:general:en": 50, "L2:legal:en": 1}
    assert await queue.overdue(now_ms=NOW + 10 * 60_000) == 12
    claimed = await queue.claim(Reviewer("ann", "L1"), lease_seconds=60, now_ms=NOW)
    assert claimed is not None and claimed.task_id == "t0"
    assert (await queue.stats(now_ms=NOW + 1000))["L1:general:en"].depth == 49
    assert await queue.leased() == 1


async def test_replaying_decisions_settles_tasks_without_leases(queue):
    await queue.enqueue_many(
        QueuedTask(f"r{i}", "L1:general:en", _score("medium", i), "p") for i in range(3)
    )
    assert await queue.enqueue_many([QueuedTask("r0", "L1:general:en", 1, "p")]) == 0
    assert await queue.settle("r0", reviewer_id="ann", final=True)
    assert await queue.settle("r0", reviewer_id="ann", final=True)  # idempotent
    assert await queue.settle("r1", reviewer_id="ann", final=False)
    assert await queue.settle("r2", reviewer_id="ann", final=False, bucket="L2:general:en")
    assert not await queue.settle("missing", final=True)
    assert (await queue.task("r0"))["state"] == "done"
    # ann already decided r1 (first approval), so she is not offered it again
    assert await queue.claim(Reviewer("ann", "L2"), lease_seconds=60, now_ms=NOW) is None
    got = await queue.claim(Reviewer("bo", "L2"), lease_seconds=60, now_ms=NOW)
    assert got is not None and got.task_id == "r1"
    assert (await queue.depths())["L2:general:en"] == 1
