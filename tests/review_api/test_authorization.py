"""Every authorization rule of the review API, on the real broker and Redis."""

from __future__ import annotations

import json

import pytest

from hitl_shared.queue import ReviewQueue
from tests.review_api.conftest import ADMIN
from tests.review_api.helpers import enqueue, make_task
from tests.support import read_until

pytestmark = pytest.mark.integration


async def _claim(api, who):
    got = await api.client.post("/api/tasks/claim", headers=who)
    assert got.status_code in (200, 204), got.text
    return got.json() if got.status_code == 200 else None


async def _decide(api, who, claim, **body):
    return await api.client.post(
        f"/api/tasks/{claim['task_id']}/decision",
        headers=who,
        json={"fence": claim["fence"], **body},
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, {"Authorization": "x"}],
)
async def test_missing_or_bad_token_is_401(api, headers):
    for method, path in (
        ("POST", "/api/tasks/claim"),
        ("GET", "/api/me"),
        ("GET", "/api/overview"),
        ("GET", "/api/items/some-item"),
        ("POST", "/api/reviewers"),
    ):
        got = await api.client.request(method, path, headers=headers, json={})
        assert got.status_code == 401, (method, path, got.text)
        assert got.json()["detail"]


async def test_revoked_token_is_401(api):
    alice = await api.user("alice")
    assert (await api.client.get("/api/me", headers=alice)).status_code == 200
    revoked = await api.client.delete("/api/reviewers/alice/tokens", headers=ADMIN)
    assert revoked.json() == {"revoked": 1}
    assert (await api.client.get("/api/me", headers=alice)).status_code == 401


async def test_only_admins_manage_users(api):
    alice = await api.user("alice", level="L3")
    auditor = await api.user("audrey", role="auditor")
    for who in (alice, auditor):
        made = await api.client.post("/api/reviewers", headers=who, json={"reviewer_id": "mallory"})
        assert made.status_code == 403
        assert (
            await api.client.post("/api/reviewers/alice/tokens", headers=who)
        ).status_code == 403
        assert (
            await api.client.delete("/api/reviewers/alice/tokens", headers=who)
        ).status_code == 403
    assert (await api.client.get("/api/reviewers", headers=alice)).status_code == 403
    reserved = await api.client.post("/api/reviewers", headers=ADMIN, json={"reviewer_id": "admin"})
    assert reserved.status_code == 422 and "reserved" in reserved.text
    listed = await api.client.get("/api/reviewers", headers=auditor)
    assert {p["reviewer_id"] for p in listed.json()} == {"alice", "audrey"}


async def test_auditor_is_read_only(api, redis):
    task = make_task(f"aud-{api.settings.redis_prefix}")
    await enqueue(redis, api.settings.redis_prefix, task)
    auditor = await api.user("audrey", role="auditor")
    alice = await api.user("alice")
    claim = await _claim(api, alice)
    for path, body in (
        ("/api/tasks/claim", None),
        (f"/api/tasks/{claim['task_id']}/heartbeat", {"fence": claim["fence"]}),
        (f"/api/tasks/{claim['task_id']}/release", {"fence": claim["fence"]}),
        (
            f"/api/tasks/{claim['task_id']}/decision",
            {"fence": claim["fence"], "verdict": "approve"},
        ),
    ):
        got = await api.client.post(path, headers=auditor, json=body)
        assert got.status_code == 403, (path, got.text)
    assert (await api.client.get("/api/overview", headers=auditor)).status_code == 200
    record = await api.client.get(f"/api/items/{task.item_id}", headers=auditor)
    assert record.status_code == 200
    # the auditor's attempts changed nothing: alice still holds the lease and decides
    assert (await _decide(api, alice, claim, verdict="approve")).status_code == 200


async def test_admin_does_not_work_tasks(api, redis):
    await enqueue(redis, api.settings.redis_prefix, make_task(f"adm-{api.settings.redis_prefix}"))
    assert (await api.client.post("/api/tasks/claim", headers=ADMIN)).status_code == 403


async def test_nobody_decides_a_task_leased_to_someone_else(api, redis):
    await enqueue(redis, api.settings.redis_prefix, make_task(f"own-{api.settings.redis_prefix}"))
    alice = await api.user("alice", level="L2")
    bob = await api.user("bob", level="L3")
    claim = await _claim(api, alice)
    assert await _claim(api, bob) is None  # the only task is leased
    for path in ("decision", "heartbeat", "release"):
        got = await api.client.post(
            f"/api/tasks/{claim['task_id']}/{path}",
            headers=bob,
            json={"fence": claim["fence"], "verdict": "approve"},
        )
        assert got.status_code == 409, (path, got.text)
    # a stale fence of alice's own is refused too
    stale = await _decide(
        api, alice, {**claim, "fence": str(int(claim["fence"]) + 1000)}, verdict="approve"
    )
    assert stale.status_code == 409
    assert (await _decide(api, alice, claim, verdict="approve")).status_code == 200


async def test_l1_cannot_finish_a_critical_item_alone(api, redis):
    task = make_task(f"crit-{api.settings.redis_prefix}", tier="critical", required_level="L1")
    await enqueue(redis, api.settings.redis_prefix, task)
    larry = await api.user("larry", level="L1")
    lena = await api.user("lena", level="L1")
    sam = await api.user("sam", level="L2")

    first = await _claim(api, larry)
    got = await _decide(api, larry, first, verdict="approve", labels=["pii"])
    assert got.json()["final"] is False and got.json()["next_step"] == "senior_review"
    # another L1 cannot take it (it waits in an L2 bucket); larry cannot take it twice
    assert await _claim(api, lena) is None
    assert await _claim(api, larry) is None

    second = await _claim(api, sam)
    assert second["task_id"] == first["task_id"]
    shown = second["previous_decisions"]
    assert [(d["reviewer_id"], d["verdict"]) for d in shown] == [("larry", "approve")]
    done = await _decide(api, sam, second, verdict="approve")
    assert done.json()["final"] is True

    decisions = await read_until(
        api.settings, api.settings.topics.review_decisions, lambda rs: len(rs) >= 2
    )
    assert [(d["reviewer_id"], d["final"]) for d in decisions] == [("larry", False), ("sam", True)]


async def test_l1_reject_of_critical_goes_to_a_senior(api, redis):
    task = make_task(f"crj-{api.settings.redis_prefix}", tier="critical", required_level="L1")
    await enqueue(redis, api.settings.redis_prefix, task)
    larry = await api.user("larry", level="L1")
    claim = await _claim(api, larry)
    got = await _decide(api, larry, claim, verdict="reject", reason="leaks a card")
    assert got.json() == {**got.json(), "final": False, "next_step": "senior_review"}


async def test_critical_needs_two_distinct_approvers_and_keeps_the_first_edit(api, redis):
    task = make_task(f"two-{api.settings.redis_prefix}", tier="critical")
    await enqueue(redis, api.settings.redis_prefix, task)
    alice = await api.user("alice", level="L2")
    bob = await api.user("bob", level="L3")
    first = await _claim(api, alice)
    edited = "Your card ending in 1111 is on file."
    got = await _decide(api, alice, first, verdict="edit", edited_text=edited, labels=["pii"])
    assert got.json()["final"] is False and got.json()["next_step"] == "second_approval"
    assert await _claim(api, alice) is None  # the same reviewer never approves twice

    second = await _claim(api, bob)
    assert second["current_text"] == edited
    assert second["previous_decisions"][0]["edited_text"] == edited
    done = await _decide(api, bob, second, verdict="approve")
    # approving an edited text publishes it as an edit, so the release carries the edit
    assert done.json()["final"] is True and done.json()["verdict"] == "edit"
    decisions = await read_until(
        api.settings, api.settings.topics.review_decisions, lambda rs: len(rs) >= 2
    )
    assert decisions[-1]["edited_text"] == edited and decisions[-1]["final"] is True


async def test_decisions_are_idempotent(api, redis):
    await enqueue(redis, api.settings.redis_prefix, make_task(f"idem-{api.settings.redis_prefix}"))
    alice = await api.user("alice")
    claim = await _claim(api, alice)
    body = {"verdict": "reject", "reason": "wrong", "labels": ["factual_error"]}
    first = await _decide(api, alice, claim, **body)
    again = await _decide(api, alice, claim, **body)
    assert first.json()["status"] == "recorded"
    assert again.json()["status"] == "already_recorded"
    assert again.json()["event_id"] == first.json()["event_id"]
    decisions = await read_until(
        api.settings, api.settings.topics.review_decisions, lambda rs: len(rs) >= 1
    )
    record = (await api.client.get(f"/api/items/{decisions[0]['item_id']}", headers=alice)).json()
    assert [a["action"] for a in record["actions"]] == ["claim", "decision"]
    assert len(decisions) == 1


async def test_escalation_goes_to_the_next_level(api, redis):
    await enqueue(redis, api.settings.redis_prefix, make_task(f"esc-{api.settings.redis_prefix}"))
    larry = await api.user("larry", level="L1")
    lena = await api.user("lena", level="L1")
    sam = await api.user("sam", level="L2")
    claim = await _claim(api, larry)
    no_reason = await _decide(api, larry, claim, verdict="escalate")
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    got = await _decide(api, larry, claim, verdict="escalate", reason="medical question")
    assert got.json()["next_step"] == "escalated"
    assert await _claim(api, lena) is None
    assert (await _claim(api, sam))["task_id"] == claim["task_id"]


async def test_release_heartbeat_and_item_record(api, redis):
    task = make_task(f"rec-{api.settings.redis_prefix}")
    await enqueue(redis, api.settings.redis_prefix, task)
    alice = await api.user("alice")
    claim = await _claim(api, alice)
    assert claim["segments"][1]["text"] == "4111 1111 1111 1111"
    beat = await api.client.post(
        f"/api/tasks/{claim['task_id']}/heartbeat", headers=alice, json={"fence": claim["fence"]}
    )
    assert beat.json()["lease_expires_ms"] >= claim["lease_expires_ms"]
    released = await api.client.post(
        f"/api/tasks/{claim['task_id']}/release", headers=alice, json={"fence": claim["fence"]}
    )
    assert released.status_code == 200
    again = await _claim(api, alice)
    assert again["task_id"] == claim["task_id"] and again["fence"] != claim["fence"]
    await _decide(api, alice, again, verdict="edit", edited_text="Card on file.", labels=["pii"])

    record = (await api.client.get(f"/api/items/{task.item_id}", headers=ADMIN)).json()
    assert record["original"]["output_text"] == task.screened.output.output_text
    assert record["flags"][0]["category"] == "payment_card"
    assert record["routing"]["rules_fired"] == ["flag:payment_card"]
    assert [a["action"] for a in record["actions"]] == [
        "claim",
        "release_claim",
        "claim",
        "decision",
    ]
    decision = record["actions"][-1]
    assert decision["actor"] == "alice" and decision["after"] == "Card on file."
    assert decision["before"] == task.screened.output.output_text
    assert record["verification"]["ok"] is True

    # rewriting history afterwards is detected
    key = f"{{{api.settings.redis_prefix}}}:audit:{task.item_id}"
    entry = json.loads(await redis.lindex(key, 3))
    entry["after"] = "something else"
    await redis.lset(key, 3, json.dumps(entry))
    tampered = (await api.client.get(f"/api/items/{task.item_id}", headers=ADMIN)).json()
    assert tampered["verification"] == {
        **tampered["verification"],
        "ok": False,
        "broken_at": 3,
        "problem": "hash",
    }
    await redis.lset(key, 3, json.dumps({**entry, "after": decision["after"]}))
    await redis.rpop(key)  # dropping the newest entry is caught by the stored head
    truncated = (await api.client.get(f"/api/items/{task.item_id}", headers=ADMIN)).json()
    assert truncated["verification"]["problem"] == "truncated"
    missing = await api.client.get("/api/items/never-seen", headers=ADMIN)
    assert missing.status_code == 404


async def test_overview_and_its_stream(api, redis):
    for n in range(3):
        await enqueue(
            redis, api.settings.redis_prefix, make_task(f"ov{n}-{api.settings.redis_prefix}")
        )
    alice = await api.user("alice")
    await _claim(api, alice)
    assert (await api.client.get("/api/overview", headers=alice)).status_code == 403
    view = (await api.client.get("/api/overview", headers=ADMIN)).json()
    assert view["total_depth"] == 2 and view["leased"] == 1
    assert view["buckets"][0]["tiers"]["medium"]["depth"] == 2
    assert view["buckets"][0]["oldest_age_s"] is not None
    assert view["reviewers"][0] == {
        **view["reviewers"][0],
        "reviewer_id": "alice",
        "active_claims": 1,
    }
    async with api.client.stream(
        "GET", "/api/overview/stream?limit=1&interval=0.2", headers=ADMIN
    ) as response:
        assert response.status_code == 200
        body = "".join([chunk async for chunk in response.aiter_text()])
    assert "event: overview" in body and '"total_depth": 2' in body


async def test_security_headers_forbid_inline_script(api):
    page = await api.client.get("/ui/task")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.text.replace("<script src=", "")
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_similar_past_cases_come_from_final_decisions(api, redis):
    ns = api.settings.redis_prefix
    for n in range(2):
        await enqueue(redis, ns, make_task(f"sim{n}-{ns}"))
    alice = await api.user("alice")
    first = await _claim(api, alice)
    assert first["similar_cases"] == []
    await _decide(api, alice, first, verdict="reject", reason="card leak", labels=["pii"])
    second = await _claim(api, alice)
    [case] = second["similar_cases"]
    assert case["item_id"] == first["task"]["item_id"]
    assert (case["verdict"], case["labels"], case["categories"]) == (
        "reject",
        ["pii"],
        ["payment_card"],
    )


async def test_an_unreadable_task_is_quarantined_not_served(api, redis):
    ns = api.settings.redis_prefix
    queue = ReviewQueue(redis, ns)
    await queue.enqueue("task-bad", bucket="L1:general:en", score=1, payload='{"not": "a task"}')
    await enqueue(redis, ns, make_task(f"good-{ns}"))
    alice = await api.user("alice")
    claim = await _claim(api, alice)
    assert claim["task"]["item_id"] == f"good-{ns}"
    view = (await api.client.get("/api/overview", headers=ADMIN)).json()
    assert {b["bucket"]: b["depth"] for b in view["buckets"]}["quarantine:invalid:payload"] == 1
