"""Rate limits on token guessing and on decisions; the audit verify command catches tampering."""

from __future__ import annotations

import json

import pytest

from hitl_review_api.audit import AuditLog
from tests.review_api.conftest import ADMIN
from tests.review_api.test_cli import _cli

pytestmark = pytest.mark.integration


async def test_repeated_bad_tokens_from_one_address_are_refused_with_429(api):
    limit = api.settings.auth_failures_per_minute
    codes = [
        (
            await api.client.get("/api/me", headers={"Authorization": f"Bearer guess-{n}"})
        ).status_code
        for n in range(limit + 3)
    ]
    assert codes[:limit] == [401] * limit
    assert set(codes[limit:]) == {429}
    locked = await api.client.get("/api/me", headers=ADMIN)
    assert locked.status_code == 429  # the address is locked out, whatever token it tries
    assert locked.headers["Retry-After"] == "60"


async def test_a_reviewer_over_the_decision_limit_gets_429(api, redis):
    headers = await api.user("speedy", level="L1")
    limiter = api.app.state.limiter
    for _ in range(api.settings.decisions_per_minute):
        await limiter.hit("decisions", "speedy")
    answer = await api.client.post(
        "/api/tasks/some-task/decision", headers=headers, json={"fence": "1", "verdict": "approve"}
    )
    assert answer.status_code == 429
    assert "too many decisions" in answer.json()["detail"]


async def test_verify_command_catches_an_altered_audit_record(api, redis):
    log = AuditLog(redis, api.settings.redis_prefix)
    for action in ("claim", "edit", "approve"):
        await log.append("item-7", {"actor": "alice", "action": action})
    clean = _cli(api.settings, "verify-audit", "item-7")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["ok"] is True

    entry = json.loads(await redis.lindex(log.key("item-7"), 1))
    entry["action"] = "reject"  # someone rewrites history
    await redis.lset(log.key("item-7"), 1, json.dumps(entry))
    caught = _cli(api.settings, "verify-audit", "item-7")
    assert caught.returncode == 1
    report = json.loads(caught.stdout)
    assert report["ok"] is False and report["broken_at"] == 1 and report["problem"] == "hash"

    await redis.lset(log.key("item-7"), 1, json.dumps({**entry, "action": "edit"}))
    await redis.rpop(log.key("item-7"))  # or deletes the newest record
    truncated = _cli(api.settings, "verify-audit", "item-7")
    assert truncated.returncode == 1
    assert json.loads(truncated.stdout)["problem"] == "truncated"
