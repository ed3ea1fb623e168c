"""The router's wiring on a real broker and Redis: release, hold, retract, kill, adapt."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from asyncio.subprocess import PIPE
from collections import Counter
from pathlib import Path

import pytest

from hitl_router.app import wire
from hitl_router.domain import default_policy
from hitl_router.killswitch import switch
from hitl_router.state import RouterStore
from hitl_shared.events import PolicyUpdate
from hitl_shared.queue import ReviewQueue
from tests.router.helpers import CARD, pick, read_settled, screened, until, verdict
from tests.support import by_item, produce, read_until, running

pytestmark = pytest.mark.integration

TIMEOUT = 60.0
ROOT = Path(__file__).resolve().parents[2]


async def _settled(settings, topic, item_ids):
    """Records of ``topic`` once every item has one, plus a quiet spell for late duplicates."""
    return await read_settled(
        settings, topic, lambda rs: set(item_ids) <= {r.get("item_id") for r in rs}
    )


async def test_auto_release_and_held_release_happen_once_despite_duplicates(
    settings, redis, unique
):
    clean = pick(f"clean-{unique}", lambda d: d.action == "release")
    leak = screened(f"leak-{unique}", flags=(CARD,))
    waiting = screened(f"waiting-{unique}", flags=(CARD,))
    async with running(settings, wire, redis):
        for _ in range(2):  # a redelivered input must not release twice
            await produce(
                settings,
                settings.topics.llm_screened,
                clean.to_bytes(),
                leak.to_bytes(),
                waiting.to_bytes(),
            )
        tasks = await read_until(
            settings,
            settings.topics.review_tasks,
            lambda rs: {leak.item_id, waiting.item_id} <= {r["item_id"] for r in rs},
        )
        queued = await ReviewQueue(redis, settings.redis_prefix).task(f"task-{leak.item_id}")
        assert queued["state"] == "queued" and queued["bucket"] == "L2:general:en"
        approve = verdict(leak, "approve")
        await produce(
            settings, settings.topics.review_decisions, approve.to_bytes(), approve.to_bytes()
        )
        late = verdict(leak, "reject", reviewer="other")  # a second final verdict: too late
        await produce(settings, settings.topics.review_decisions, late.to_bytes())
        released = await _settled(
            settings, settings.topics.llm_released, [clean.item_id, leak.item_id]
        )
        decisions = await read_until(
            settings, settings.topics.routing_decisions, by_item(leak.item_id)
        )

    counts = Counter(r["item_id"] for r in released)
    assert counts == {clean.item_id: 1, leak.item_id: 1}
    out = {r["item_id"]: r for r in released}
    assert out[clean.item_id]["outcome"] == "auto_released"
    assert out[leak.item_id]["outcome"] == "approved"
    assert out[leak.item_id]["text"] == leak.output.output_text
    assert out[leak.item_id]["decided_by"] == ["rita"]
    task = next(t for t in tasks if t["item_id"] == leak.item_id)
    assert task["tier"] == "critical" and task["approvals_required"] == 2
    assert task["required_level"] == "L2"
    leak_decisions = {d["event_id"] for d in decisions if d["item_id"] == leak.item_id}
    assert len(leak_decisions) == 1  # a replay republishes the same decision
    assert all(r["_headers"].get("traceparent") for r in released)

    # Redis loses everything; the rebuild command restores it from Kafka
    await redis.delete(*[key async for key in redis.scan_iter(f"{{{settings.redis_prefix}}}*")])
    report = json.loads(await _command(settings, "hitl_router.rebuild"))
    assert report["released"] == {"release_restored": 2}
    assert report["tasks"]["queued"] == 2  # each task twice on the topic: fed in twice
    assert report["decisions"]["finished"] >= 1
    queue = ReviewQueue(redis, settings.redis_prefix)
    assert (await queue.task(f"task-{leak.item_id}"))["state"] == "done"
    assert (await queue.task(f"task-{waiting.item_id}"))["state"] == "queued"
    assert await queue.depths() == {"L2:general:en": 1}
    store = RouterStore(redis, settings.redis_prefix)
    assert (await store.routing(clean.item_id)).action == "release"
    replayed = await store.route((await store.routing(clean.item_id)), None)
    assert replayed.outcome == "replay"
    assert await redis.llen(f"{{{settings.redis_prefix}}}:outbox") == 0


async def test_parallel_mode_releases_at_once_and_retracts_after_a_rejection(
    settings, redis, unique
):
    item = pick(
        f"par-{unique}", lambda d: d.action == "release_and_review", content_category="smalltalk"
    )
    fallback = default_policy().fallback_for("support-bot")
    async with running(settings, wire, redis):
        await produce(settings, settings.topics.llm_screened, item.to_bytes())
        first = await read_until(settings, settings.topics.llm_released, by_item(item.item_id))
        rejected = verdict(item, "reject")
        await produce(
            settings, settings.topics.review_decisions, rejected.to_bytes(), rejected.to_bytes()
        )
        records = await read_settled(
            settings,
            settings.topics.llm_released,
            lambda rs: any(r.get("event_type") == "llm.retraction" for r in rs),
        )

    assert [r["outcome"] for r in first if r["item_id"] == item.item_id] == ["auto_released"]
    mine = [r for r in records if r["item_id"] == item.item_id]
    assert [r["event_type"] for r in mine] == ["llm.release", "llm.retraction"]
    assert mine[1]["replacement_text"] == fallback


async def test_live_inputs_kill_switch_and_feedback_rates(settings, redis, unique):
    """One router run: the kill switch holds an app at once and lets go again; feedback
    rates apply newest-sequence-first and never below the tier's floor."""
    items = [pick(f"kill-{unique}-{i}", lambda d: d.action == "release") for i in range(10)]
    after = pick(f"after-{unique}", lambda d: d.action == "release")
    store = RouterStore(redis, settings.redis_prefix)
    floor = default_policy().tiers["low"].floor
    async with running(settings, wire, redis):
        await switch(settings, "support-bot", on=True, operator="sre", reason="bad deploy")
        await produce(settings, settings.topics.llm_screened, *(s.to_bytes() for s in items))
        decisions = await read_until(
            settings,
            settings.topics.routing_decisions,
            lambda rs: {s.item_id for s in items} <= {r["item_id"] for r in rs},
            timeout=TIMEOUT,
        )
        control = await read_until(settings, settings.topics.control, lambda rs: len(rs) >= 1)
        status = await _command(settings, "hitl_router.killswitch", "--status")
        off = await _command(
            settings, "hitl_router.killswitch", "--app", "support-bot", "--off", "--operator", "sre"
        )
        await produce(settings, settings.topics.llm_screened, after.to_bytes())
        released = await read_settled(
            settings, settings.topics.llm_released, by_item(after.item_id)
        )

        await produce(settings, settings.topics.policy_updates, _update(0.9, 5), _update(0.3, 3))
        await until(lambda: _rate(store), lambda seg: seg is not None and seg.sequence == 5)
        await produce(settings, settings.topics.policy_updates, _update(0.3, 4))
        item = screened(f"rate-{unique}")
        await produce(settings, settings.topics.llm_screened, item.to_bytes())
        first = await read_until(settings, settings.topics.routing_decisions, by_item(item.item_id))
        await produce(settings, settings.topics.policy_updates, _update(0.0, 6))
        await until(lambda: _rate(store), lambda seg: seg.sequence == 6)
        low = screened(f"floor-{unique}")
        await produce(settings, settings.topics.llm_screened, low.to_bytes())
        second = await read_until(settings, settings.topics.routing_decisions, by_item(low.item_id))

    held = [d for d in decisions if d["item_id"] in {s.item_id for s in items}]
    assert len(held) == len(items)
    assert all(d["action"] == "hold" for d in held)
    assert all("kill_switch:support-bot" in d["rules_fired"] for d in held)
    assert {r["item_id"] for r in released} == {after.item_id}
    assert control[0]["app"] == "support-bot" and control[0]["on"] is True
    assert control[0]["operator"] == "sre"
    assert status.strip() == "support-bot"
    assert "kill switch for support-bot OFF" in off

    d1 = next(d for d in first if d["item_id"] == item.item_id)
    assert d1["tier"] == "low" and d1["review_probability"] == 0.9
    assert "rate:feedback#5=0.9000" in d1["rules_fired"]
    d2 = next(d for d in second if d["item_id"] == low.item_id)
    assert d2["review_probability"] == floor
    assert (await _rate(store)).sequence == 6


async def _command(settings, module: str, *args: str) -> str:
    """Run an operator command the way an operator would, against the test's stack."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("shared", "services/router")),
        "HITL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "HITL_REDIS_URL": settings.redis_url,
        "HITL_TOPIC_PREFIX": settings.topic_prefix,
        "HITL_REDIS_PREFIX": settings.redis_prefix,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def _update(rate: float, sequence: int) -> bytes:
    return PolicyUpdate(
        item_id="support-bot:billing:low",
        app="support-bot",
        use_case="billing",
        tier="low",
        review_rate=rate,
        sequence=sequence,
        method="test",
        observed_items=200,
        observed_errors=4,
    ).to_bytes()


async def _rate(store: RouterStore):
    return (await store.live()).rates.get(("support-bot", "billing", "low"))
