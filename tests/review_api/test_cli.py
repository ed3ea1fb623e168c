"""The admin CLI creates users and tokens straight in Redis; the API accepts them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.review_api.conftest import ADMIN

pytestmark = pytest.mark.integration


def _cli(settings, *args):
    env = {
        **os.environ,
        "HITL_REDIS_URL": settings.redis_url,
        "HITL_REDIS_PREFIX": settings.redis_prefix,
        "PYTHONPATH": os.pathsep.join(["shared", "services/review-api", "."]),
    }
    return subprocess.run(
        [sys.executable, "-m", "hitl_review_api.admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cli_creates_reviewers_whose_tokens_work(api):
    made = _cli(api.settings, "create-reviewer", "carol", "--level", "L2", "--skill", "medical")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    me = await api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {
        "reviewer_id": "carol",
        "role": "reviewer",
        "level": "L2",
        "skills": ["medical"],
        "languages": ["en"],
    }
    stored = await api.app.state.redis.keys(f"{{{api.settings.redis_prefix}}}:token:*")
    assert token not in str(stored)  # only the hash is a key

    for bad_id in ("bad id!", "admin"):
        bad = _cli(api.settings, "create-reviewer", bad_id)
        assert bad.returncode == 2 and "invalid input" in bad.stderr
    assert _cli(api.settings, "revoke", "carol").stdout.strip() == "revoked 1 token(s)"
    gone = await api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401
    trail = (await api.client.get("/api/admin-trail", headers=ADMIN)).json()
    assert [a["action"] for a in trail["actions"]] == ["create_reviewer", "revoke_tokens"]
    assert trail["verification"]["ok"] is True
