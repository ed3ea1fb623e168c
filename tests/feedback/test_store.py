"""The Redis store against its pure twins: window evidence, idempotency, time slices."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from hitl_feedback.annotations import annotate
from hitl_feedback.sampling import Window
from hitl_feedback.store import FeedbackStore
from tests.feedback.sample import decisions

pytestmark = pytest.mark.integration

START = datetime(2026, 2, 1, tzinfo=UTC)


def _stream(n: int):
    base = decisions()[0]
    rng = random.Random(3)
    made = []
    for i in range(n):
        error = rng.random() < (0.1 if i < n // 2 else 0.4)
        made.append(
            annotate(
                base.model_copy(
                    update={
                        "event_id": f"e{i:04d}",
                        "item_id": f"w{i}",
                        "occurred_at": START + timedelta(seconds=i),
                        "verdict": "reject" if error else "approve",
                        "reason": "wrong" if error else None,
                    }
                )
            )
        )
    return made


async def test_window_is_order_independent_and_matches_the_pure_window(redis, unique):
    stream = _stream(300)
    expected = Window(50)
    for a in stream:
        expected.observe(a.is_error)
    finals = []
    for order in range(2):
        store = FeedbackStore(redis, f"t{unique}-{order}")
        shuffled = list(stream)
        random.Random(order).shuffle(shuffled)
        for a in shuffled:
            assert (await store.ingest(a, 50)).new
        assert not (await store.ingest(shuffled[0], 50)).new  # redelivery: nothing changes
        finals.append((await store.segments())["bot:billing:low"])
    assert finals[0] == finals[1] == expected.evidence


async def test_redelivery_returns_the_first_ingests_evidence(redis, unique):
    store = FeedbackStore(redis, f"t{unique}")
    first, second = _stream(2)
    one = await store.ingest(first, 50)
    two = await store.ingest(second, 50)
    again = await store.ingest(first, 50)
    assert one.new and two.new and not again.new
    assert again.evidence == one.evidence and one.evidence.reviewed == 1
    counters = await store.counters()
    assert counters["all|decisions"] == 2


async def test_time_slice_reads_only_its_window(redis, unique):
    store = FeedbackStore(redis, f"t{unique}")
    for a in _stream(20):
        await store.ingest(a, 50)
    sliced = await store.annotations(
        since=START + timedelta(seconds=5), until=START + timedelta(seconds=8)
    )
    assert [a.event_id for a in sliced] == ["e0005", "e0006", "e0007"]
    assert len(await store.annotations()) == 20


async def test_report_command_reads_the_service_state(redis, redis_url, unique):
    from hitl_feedback.report import parser, run
    from hitl_shared.settings import Settings

    settings = Settings(redis_url=redis_url, redis_prefix=f"t{unique}")
    store = FeedbackStore(redis, settings.redis_prefix)
    for decision in decisions():
        await store.ingest(annotate(decision), 50)
    ab = await run(
        parser().parse_args(["ab", "--a", "1", "--b", "2", "--min-items", "4"]), settings, redis
    )
    assert ab["metrics"]["error_rate"]["a"] == [2, 4] and ab["metrics"]["error_rate"]["b"] == [3, 4]
    assert ab["verdict"].startswith("no significant difference")
    metrics = await run(parser().parse_args(["metrics", "--reviewer", "r1"]), settings, redis)
    assert metrics["overall"]["decisions"] == 6
