"""The feedback service on the real broker and Redis: annotations, counters, knowledge
base, policy updates, dead letters, and metrics rebuilt exactly by replaying Kafka."""

from __future__ import annotations

import asyncio
import json

import pytest

import hitl_feedback.app as feedback_app
from hitl_feedback.app import wire
from hitl_feedback.config import FeedbackConfig
from hitl_feedback.queries import metrics_snapshot
from hitl_feedback.store import FeedbackStore
from hitl_shared.events import Release, Retraction, ScreenedOutput, UserFeedback
from hitl_shared.topics import dead_letter_topic
from tests.factories import llm_output
from tests.feedback.sample import decisions
from tests.support import produce, read_until, running

pytestmark = pytest.mark.integration


async def _wait_for(predicate, timeout: float = 30.0) -> None:
    """Poll Redis state the service writes (no event to wait on across processes)."""
    async with asyncio.timeout(timeout):
        while not await predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def _publish_sample(settings, redis) -> list:
    events = decisions()
    ns = "{" + settings.redis_prefix + "}"
    prompted = llm_output("i2", prompt="What is the fee?")
    await redis.hset(
        f"{ns}:item:i2",
        "screened",
        ScreenedOutput(item_id="i2", output=prompted).model_dump_json(),
    )
    for event in events:
        await produce(
            settings, settings.topics.review_decisions, event.to_bytes(), key=event.item_id.encode()
        )
    return events


async def test_decisions_become_annotations_metrics_kb_and_policy_updates(settings, redis):
    store = FeedbackStore(redis, settings.redis_prefix)
    config = FeedbackConfig(update_every=2)
    events = await _publish_sample(settings, redis)
    # A redelivered decision and a poison record must change nothing / be dead-lettered.
    await produce(settings, settings.topics.review_decisions, events[1].to_bytes())
    await produce(settings, settings.topics.review_decisions, b'{"item_id": "x", "verdict": 1}')
    feedback = UserFeedback(item_id="i1", app="bot", kind="explicit", rating=4)
    await produce(settings, settings.topics.user_feedback, feedback.to_bytes(), feedback.to_bytes())
    release = Release(item_id="i1", app="bot", outcome="approved", text="t", policy_version="p1")
    retraction = Retraction(item_id="i3", app="bot", reason="rejected after release")
    await produce(
        settings,
        settings.topics.llm_released,
        release.to_bytes(),
        release.to_bytes(),
        retraction.to_bytes(),
    )

    async def wire_with_config(s, b, r, p):
        return await wire(s, b, r, p, config=config)

    async with running(settings, wire_with_config, redis):

        async def all_in() -> bool:
            return (
                await redis.hlen(store.annotations_key) == len(events)
                and bool(await store.user_feedback())
                and len(await store.releases()) == 2
            )

        await _wait_for(all_in)
        letters = await read_until(
            settings, dead_letter_topic(settings.topics.review_decisions), lambda r: len(r) >= 1
        )
        # Segment bot:billing:low settles 5 items, bot:medical:high 3: updates after 2 and 4.
        updates = await read_until(settings, settings.topics.policy_updates, lambda r: len(r) >= 3)

    assert letters[0]["exc_class"] == "ValidationError"
    snap = await metrics_snapshot(redis, settings.redis_prefix, config=config)
    overall = snap["overall"]
    assert (overall["decisions"], overall["items_settled"], overall["errors"]) == (13, 8, 5)
    assert snap["agreement"]["pairs"][0]["cohen_kappa"] == pytest.approx(7 / 11)
    assert snap["value"]["value"] == pytest.approx(1882)
    assert snap["counters"]["all|decisions"] == 13
    assert snap["counters"]["reviewer=r2|escalations"] == 1
    assert snap["user_feedback"]["bot"]["counts"]["rating_n"] == 1  # duplicate counted once
    assert snap["user_feedback"]["bot"]["mean_rating"] == 4
    assert snap["releases"] == {"bot|approved": 1, "bot|retracted": 1}
    json.dumps(snap, allow_nan=False)  # servable as JSON as is
    assert snap["sampling"]["bot:billing:low"]["reviewed"] == 5

    sliced = await metrics_snapshot(redis, settings.redis_prefix, prompt_version="2")
    assert sliced["overall"]["error_rate"] == 0.75
    day2 = await metrics_snapshot(redis, settings.redis_prefix, since="2026-01-06T00:00:00Z")
    assert day2["overall"]["decisions"] == 6

    prompts = {a.item_id: a.prompt for a in await store.annotations()}
    assert prompts["i2"] == "What is the fee?" and prompts["i1"] is None

    kb = {k.decode(): json.loads(v) for k, v in (await redis.hgetall(store.kb_key)).items()}
    assert sorted(kb) == ["i2", "i3", "i6", "i7", "i8"]
    assert kb["i3"]["text"] == "Original answer for i3." and kb["i3"]["labels"] == ["pii"]

    by_segment: dict[str, list[int]] = {}
    for update in updates:
        by_segment.setdefault(update["item_id"], []).append(update["sequence"])
        assert 0.05 <= update["review_rate"] <= 1.0
        assert update["method"].startswith("beta-posterior-upper-bound")
    assert sorted(by_segment["bot:billing:low"]) == [1, 2]
    assert by_segment["bot:medical:high"] == [1]
    assert all(u["review_rate"] >= 0.75 for u in updates if u["tier"] == "high")


async def test_replaying_the_decision_topic_rebuilds_identical_metrics(
    settings, redis, monkeypatch
):
    store = FeedbackStore(redis, settings.redis_prefix)
    events = await _publish_sample(settings, redis)

    async def settled() -> bool:
        return await redis.hlen(store.annotations_key) == len(events)

    async with running(settings, wire, redis):
        await _wait_for(settled)
    before = await metrics_snapshot(redis, settings.redis_prefix)
    kb_before = await redis.hgetall(store.kb_key)
    assert len(kb_before) == 5

    # Drop every feedback key (the router's item record stays), replay from offset 0.
    ns = "{" + settings.redis_prefix + "}"
    async for key in redis.scan_iter(match=f"{ns}:fb:*"):
        await redis.delete(key)
    await redis.delete(store.kb_key)
    monkeypatch.setattr(feedback_app, "GROUP_ID", "hitl-feedback-rebuild")
    async with running(settings, wire, redis):
        await _wait_for(settled)
    after = await metrics_snapshot(redis, settings.redis_prefix)
    assert after == before
    assert await redis.hgetall(store.kb_key) == kb_before
