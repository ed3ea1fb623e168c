"""A/B end to end through the API: a reviewed split, feedback's verdict, a reviewed winner."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from hitl_feedback.annotations import annotate
from hitl_feedback.store import FeedbackStore
from hitl_shared.events import ReviewDecision
from tests.prompts.helpers import content

pytestmark = pytest.mark.integration


def _decision(
    item_id: str, version: str, verdict: str, use_case: str = "billing"
) -> ReviewDecision:
    return ReviewDecision(
        item_id=item_id,
        task_id=f"task-{item_id}",
        reviewer_id="rev",
        reviewer_level="L1",
        verdict=verdict,
        original_text="Your refund is on its way.",
        edited_text="Your refund was requested." if verdict == "edit" else None,
        reason="wrong" if verdict == "reject" else None,
        app="support-bot",
        use_case=use_case,
        tier="medium",
        prompt_template_id="support",
        prompt_template_version=version,
    )


async def _approve_all(api, users, proposal_id):
    for who, role in (("olga", "prompt_owner"), ("carl", "compliance")):
        done = await api.client.post(
            f"/api/prompts/support/proposals/{proposal_id}/approve",
            headers=users[who],
            json={"as_role": role},
        )
        assert done.status_code == 200, done.text
    return done.json()


async def test_split_verdict_and_reviewed_promotion(api, redis):
    users = {
        "author": await api.user("author", skills=["prompt_owner"]),
        "olga": await api.user("olga", skills=["prompt_owner"]),
        "carl": await api.user("carl", skills=["compliance"]),
    }
    body = {"content": json.loads(content().model_dump_json())}
    made = await api.client.post(
        "/api/prompts",
        headers=users["author"],
        json={"template_id": "support", "app": "support-bot", **body},
    )
    await _approve_all(api, users, made.json()["proposal_id"])
    v2 = json.loads(content(task="Answer with a policy link: {{ question }}").model_dump_json())
    proposed = await api.client.post(
        "/api/prompts/support/versions", headers=users["author"], json={"content": v2}
    )
    assert proposed.status_code == 201

    split = await api.client.post(
        "/api/prompts/support/experiments",
        headers=users["author"],
        json={"version": "2", "share": 0.3},
    )
    assert split.status_code == 201 and split.json()["action"] == "experiment"
    serving = (await api.client.get("/api/prompts/support/serving", headers=users["carl"])).json()
    assert serving["experiment"] is None  # the split waits for its review too
    await _approve_all(api, users, split.json()["proposal_id"])

    arms = Counter()
    for n in range(400):
        got = await api.client.get(
            "/api/prompts/support/resolve", params={"key": f"user-{n}"}, headers=users["carl"]
        )
        arms[got.json()["version"]] += 1
    assert 0.22 < arms["2"] / 400 < 0.38

    early = await api.client.get("/api/prompts/support/ab", headers=users["carl"])
    assert early.json()["verdict"].startswith("insufficient data")
    nope = await api.client.post("/api/prompts/support/ab/promote", headers=users["author"])
    assert nope.status_code == 409

    store = FeedbackStore(redis, api.settings.redis_prefix)
    for version, errors in (("1", 30), ("2", 8)):
        for n in range(100):
            verdict = "edit" if n < errors else "approve"
            await store.ingest(annotate(_decision(f"v{version}-{n}", version, verdict)), 200)
    for n in range(50):  # red-team attacks on version 2 are not part of its arm
        attack = _decision(f"rt-{n}", "2", "reject", use_case="red-team")
        await store.ingest(annotate(attack.model_copy(update={"reason": "fell for it"})), 200)
    result = (await api.client.get("/api/prompts/support/ab", headers=users["carl"])).json()
    assert result["winner"] == "2" and result["verdict"].startswith("prefer version 2")
    assert result["metrics"]["error_rate"]["a"] == [30, 100]
    assert result["metrics"]["error_rate"]["b"] == [8, 100]

    promote = await api.client.post("/api/prompts/support/ab/promote", headers=users["author"])
    assert promote.status_code == 201, promote.text
    proposal = promote.json()
    assert proposal["missing"] == {"prompt_owner": 1, "compliance": 1}
    assert proposal["reason"].startswith("A/B winner: prefer version 2")
    state = (await api.client.get("/api/prompts/support", headers=users["carl"])).json()
    assert state["labels"]["production"] == "1" and state["experiment"] is not None

    applied = await _approve_all(api, users, proposal["proposal_id"])
    assert applied["status"] == "applied"
    state = (await api.client.get("/api/prompts/support", headers=users["carl"])).json()
    assert state["labels"] == {"production": "2"} and state["experiment"] is None


async def test_concurrent_approvals_apply_the_change_once(api):
    users = {
        "author": await api.user("author", skills=["prompt_owner"]),
        "olga": await api.user("olga", skills=["prompt_owner"]),
        "carl": await api.user("carl", skills=["compliance"]),
        "audrey": await api.user("audrey", role="auditor"),
        "rita": await api.user("rita"),
    }
    body = {"template_id": "support", "app": "support-bot"}
    body["content"] = json.loads(content().model_dump_json())
    for who in ("audrey", "rita"):  # neither an author nor an admin
        denied = await api.client.post("/api/prompts", headers=users[who], json=body)
        assert denied.status_code == 403
    for policy, code in (
        ({"required": {"prompt_owner": 1, "legal": 1}}, 403),  # only admins set a policy
        ({"required": {"prompt_owner": 1}}, 422),  # and never below two approvals
    ):
        got = await api.client.post(
            "/api/prompts", headers=users["author"], json={**body, "policy": policy}
        )
        assert got.status_code == code, got.text
    made = await api.client.post("/api/prompts", headers=users["author"], json=body)
    url = f"/api/prompts/support/proposals/{made.json()['proposal_id']}/approve"
    results = await asyncio.gather(
        api.client.post(url, headers=users["olga"], json={"as_role": "prompt_owner"}),
        api.client.post(url, headers=users["carl"], json={"as_role": "compliance"}),
    )
    assert [r.status_code for r in results] == [200, 200]
    trail = (await api.client.get("/api/prompts/support/audit", headers=users["audrey"])).json()
    actions = [a["action"] for a in trail["actions"]]
    assert actions.count("prompt.proposal_applied") == 1 and trail["verification"]["ok"]
    state = (await api.client.get("/api/prompts/support", headers=users["audrey"])).json()
    assert state["labels"] == {"production": "1"}
