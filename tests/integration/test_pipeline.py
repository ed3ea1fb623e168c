"""The whole loop on a real broker and Redis: publish, screen, route, review, release."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx
import pytest
from pydantic import SecretStr

from hitl_feedback.app import wire as wire_feedback
from hitl_prescreen.app import wire as wire_prescreen
from hitl_review_api.app import create_app
from hitl_router.app import wire as wire_router
from hitl_router.domain import default_policy, sample_unit
from tests.factories import llm_output
from tests.support import by_item, produce, read_until, running

pytestmark = pytest.mark.integration


def _unsampled_low_tier_id(prefix: str) -> str:
    policy = default_policy()
    for n in range(1000):
        candidate = f"{prefix}-{n}"
        if sample_unit(candidate, policy.version) >= policy.tiers["low"].review_rate:
            return candidate
    raise AssertionError("no unsampled id found")


async def test_clean_output_is_screened_routed_and_auto_released(settings, redis, unique):
    item_id = _unsampled_low_tier_id(f"clean-{unique}")
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running(settings, wire_prescreen, redis))
        await stack.enter_async_context(running(settings, wire_router, redis))
        await produce(
            settings,
            settings.topics.llm_outputs,
            llm_output(item_id).to_bytes(),
            key=item_id.encode(),
        )
        released = await read_until(settings, settings.topics.llm_released, by_item(item_id))
        decisions = await read_until(settings, settings.topics.routing_decisions, by_item(item_id))

    release = next(r for r in released if r["item_id"] == item_id)
    assert release["outcome"] == "auto_released"
    assert release["text"] == llm_output(item_id).output_text
    decision = next(d for d in decisions if d["item_id"] == item_id)
    assert decision["tier"] == "low" and decision["action"] == "release"
    assert decision["policy_version"] and decision["rules_fired"]


async def test_card_leak_is_held_until_two_reviewers_settle_it(settings, redis, unique):
    item_id = f"leak-{unique}"
    leaked = llm_output(
        item_id, output_text="Your card 4111 1111 1111 1111 is on file.", user_vulnerability="high"
    )
    app = create_app(settings.model_copy(update={"admin_token": SecretStr("admin-secret-token")}))
    async with AsyncExitStack() as stack:
        for wire in (wire_prescreen, wire_router, wire_feedback):
            await stack.enter_async_context(running(settings, wire, redis))
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        )
        await produce(
            settings, settings.topics.llm_outputs, leaked.to_bytes(), key=item_id.encode()
        )
        await read_until(settings, settings.topics.review_tasks, by_item(item_id))

        admin = {"Authorization": "Bearer admin-secret-token"}
        tokens = {}
        for name, level in (("alice", "L2"), ("bob", "L3")):
            made = await client.post(
                "/api/reviewers", headers=admin, json={"reviewer_id": name, "level": level}
            )
            assert made.status_code == 201, made.text
            tokens[name] = {"Authorization": f"Bearer {made.json()['token']}"}

        claimed = await client.post("/api/tasks/claim", headers=tokens["alice"])
        assert claimed.status_code == 200, claimed.text
        task = claimed.json()
        assert task["task"]["item_id"] == item_id
        assert task["task"]["tier"] == "critical"
        assert any(f["category"] == "payment_card" for f in task["task"]["screened"]["flags"])

        # nobody else can decide a task leased to alice
        stolen = await client.post(
            f"/api/tasks/{task['task_id']}/decision",
            headers=tokens["bob"],
            json={"fence": task["fence"], "verdict": "approve"},
        )
        assert stolen.status_code == 409

        edited = "Your card ending in 1111 is on file."
        body = {
            "fence": task["fence"],
            "verdict": "edit",
            "edited_text": edited,
            "labels": ["pii"],
            "reason": "card number leaked",
        }
        first = await client.post(
            f"/api/tasks/{task['task_id']}/decision", headers=tokens["alice"], json=body
        )
        again = await client.post(
            f"/api/tasks/{task['task_id']}/decision", headers=tokens["alice"], json=body
        )
        assert first.status_code == 200 and again.json()["status"] == "already_recorded"
        assert first.json()["final"] is False  # critical: a second, distinct approver is needed

        second = await client.post("/api/tasks/claim", headers=tokens["bob"])
        assert second.status_code == 200, second.text
        assert second.json()["previous_decisions"][0]["edited_text"] == edited
        done = await client.post(
            f"/api/tasks/{second.json()['task_id']}/decision",
            headers=tokens["bob"],
            json={"fence": second.json()["fence"], "verdict": "approve"},
        )
        assert done.status_code == 200 and done.json()["final"] is True

        released = await read_until(settings, settings.topics.llm_released, by_item(item_id))
        await asyncio.sleep(0.5)  # a duplicate release, if any, would land by now
        released = await read_until(settings, settings.topics.llm_released, by_item(item_id))

    mine = [r for r in released if r["item_id"] == item_id]
    assert len(mine) == 1
    assert mine[0]["outcome"] == "edited" and mine[0]["text"] == edited
    assert "bob" in mine[0]["decided_by"]
