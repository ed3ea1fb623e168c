"""The registry on the real broker and Redis: reviewed changes reach the apps' outputs."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from hitl_review_api.prompts.store import PromptStore, rebuild
from hitl_shared.client import HitlClient
from hitl_shared.prompt_catalog import PromptCatalog, stamp
from tests.factories import llm_output
from tests.prompts.helpers import content
from tests.review_api.conftest import make_user
from tests.support import read_until

pytestmark = pytest.mark.integration
TTL = 0.3


def _body(**extra):
    return {"content": json.loads(content(**extra).model_dump_json())}


async def test_change_needs_two_distinct_roles_then_the_client_stamps_it(live, settings, redis):
    tokens = {
        name: {"Authorization": f"Bearer {await make_user(live, name, **profile)}"}
        for name, profile in {
            "author": {"skills": ["prompt_owner"]},
            "olga": {"skills": ["prompt_owner"]},
            "carl": {"skills": ["compliance"]},
            "both": {"skills": ["prompt_owner", "compliance"]},
            "audrey": {"role": "auditor"},
            "app": {"role": "auditor"},
        }.items()
    }
    async with httpx.AsyncClient(base_url=live.url) as http:
        made = await http.post(
            "/api/prompts",
            headers=tokens["author"],
            json={"template_id": "support", "app": "support-bot", **_body()},
        )
        assert made.status_code == 201, made.text
        first = made.json()
        assert first["missing"] == {"prompt_owner": 1, "compliance": 1}
        for who, role in (("olga", "prompt_owner"), ("carl", "compliance")):
            done = await http.post(
                f"/api/prompts/support/proposals/{first['proposal_id']}/approve",
                headers=tokens[who],
                json={"as_role": role},
            )
            assert done.status_code == 200, done.text
        assert done.json()["status"] == "applied"

        catalog = PromptCatalog.over_http(live.url, tokens["app"]["Authorization"][7:], ttl_s=TTL)
        rendered = await catalog.render("support", {"question": "Where is my parcel?"}, key="u1")
        assert rendered.version == "1"

        proposed = await http.post(
            "/api/prompts/support/versions",
            headers=tokens["author"],
            json={**_body(task="Answer briefly and cite the policy: {{ question }}"), "note": "v2"},
        )
        assert proposed.status_code == 201, proposed.text
        proposal = proposed.json()
        assert proposal["target_version"] == "2" and proposal["current_production"] == "1"
        assert "+Answer briefly and cite the policy: {{ question }}" in proposal["diff"]
        assert "-Answer the customer's question: {{ question }}" in proposal["diff"]
        approve = f"/api/prompts/support/proposals/{proposal['proposal_id']}/approve"

        refused = {
            "author approves own change": ("author", "prompt_owner", 403),
            "carl lacks the owner role": ("carl", "prompt_owner", 403),
            "auditors only read": ("audrey", "compliance", 403),
        }
        for why, (who, role, code) in refused.items():
            got = await http.post(approve, headers=tokens[who], json={"as_role": role})
            assert got.status_code == code, (why, got.text)

        one = await http.post(approve, headers=tokens["both"], json={"as_role": "prompt_owner"})
        assert one.status_code == 200 and one.json()["missing"] == {"compliance": 1}
        again = await http.post(approve, headers=tokens["both"], json={"as_role": "compliance"})
        assert again.status_code == 409 and "distinct" in again.text

        await asyncio.sleep(TTL * 1.5)  # one approval is not enough: still version 1
        assert (await catalog.version_for("support", "u1")).version == "1"
        state = (await http.get("/api/prompts/support", headers=tokens["audrey"])).json()
        assert state["labels"] == {"production": "1", "candidate": "2"}

        two = await http.post(approve, headers=tokens["carl"], json={"as_role": "compliance"})
        assert two.status_code == 200 and two.json()["status"] == "applied"

        await asyncio.sleep(TTL * 1.5)
        rendered = await catalog.render("support", {"question": "Where is my parcel?"}, key="u1")
        assert rendered.version == "2" and "cite the policy" in rendered.text
        assert catalog.fetches >= 3

        trail = (await http.get("/api/prompts/support/audit", headers=tokens["audrey"])).json()
        assert trail["verification"]["ok"]
        actions = [(a["action"], a["actor"]) for a in trail["actions"]]
        assert actions[-3:] == [
            ("prompt.proposal_approved", "both"),
            ("prompt.proposal_approved", "carl"),
            ("prompt.proposal_applied", "carl"),
        ]

    async with HitlClient(live.settings, app="support-bot", listen=False) as client:
        for n, version in enumerate(("1", "2")):
            source = (await _state(live, redis)).versions[version]
            output = stamp(llm_output(f"stamped-{n}", prompt=rendered.text), source)
            await client.submit(output)
        output = stamp(llm_output("stamped-now"), await catalog.version_for("support", "u9"))
        await client.submit(output)
    seen = await read_until(
        settings,
        settings.topics.llm_outputs,
        lambda records: any(r["item_id"] == "stamped-now" for r in records),
    )
    stamped = {r["item_id"]: r["prompt_template_version"] for r in seen}
    assert stamped["stamped-now"] == "2"
    assert {r["prompt_template_id"] for r in seen} == {"support"}

    # Redis is a cache of the topic: wipe the state, rebuild it, nothing is lost
    before = await _state(live, redis)
    store = PromptStore(redis, live.settings.redis_prefix)
    await redis.delete(store.key("support"), store.index)
    assert await store.get("support") is None
    assert await rebuild(live.settings, redis) == 1
    assert await _state(live, redis) == before


async def _state(live, redis):
    state = await PromptStore(redis, live.settings.redis_prefix).get("support")
    assert state is not None
    return state
