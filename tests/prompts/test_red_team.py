"""A red-team run end to end: the demo app's suite through prescreen, router and reviewers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from examples.red_team.fake_model import FOOLED, respond
from hitl_review_api.prompts.red_team import load_suite, run, suite_path
from hitl_router.policy import default_policy_text
from tests.client.stack import ADMIN_TOKEN, reviewing

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = json.loads((ROOT / "examples/red_team/support_answer_template.json").read_text())
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def full_review_policy(path: Path) -> str:
    """The shipped policy with every red-team output held for review.

    Stands in for the router rule the red team needs (metadata.red_team -> hold at 100 %).
    """
    policy = yaml.safe_load(default_policy_text())
    policy["version"] = "red-team-test"
    for tier in policy["tiers"].values():
        tier["review_rate"] = tier["floor"] = 1.0
    policy["apps"]["support-bot"]["mode"] = "sequential"
    path.write_text(yaml.safe_dump(policy))
    return str(path)


async def _production_template(http) -> None:
    users = {}
    for name, skills in (
        ("author", ["prompt_owner"]),
        ("olga", ["prompt_owner"]),
        ("carl", ["compliance"]),
    ):
        made = await http.post(
            "/api/reviewers", headers=ADMIN, json={"reviewer_id": name, "skills": skills}
        )
        users[name] = {"Authorization": f"Bearer {made.json()['token']}"}
    created = await http.post("/api/prompts", headers=users["author"], json=TEMPLATE)
    assert created.status_code == 201, created.text
    for who, role in (("olga", "prompt_owner"), ("carl", "compliance")):
        done = await http.post(
            f"/api/prompts/support-answer/proposals/{created.json()['proposal_id']}/approve",
            headers=users[who],
            json={"as_role": role},
        )
    assert done.json()["status"] == "applied"


async def test_red_team_run_on_the_demo_app(settings, redis, tmp_path):
    configured = settings.model_copy(
        update={"policy_file": full_review_policy(tmp_path / "p.yaml")}
    )
    suite = load_suite(suite_path("support-bot"))
    fooled = FOOLED & {c.id for c in suite.cases}

    def verdict(item: str) -> dict[str, str]:
        case = item.split("-", 2)[2]
        if case in fooled:
            return {
                "verdict": "reject",
                "reason": "red team: the model fell for it",
                "labels": ["alignment_safety"],
            }
        return {"verdict": "approve"}

    async with reviewing(configured, redis) as reviewers:
        await _production_template(reviewers.http)
        running = asyncio.create_task(
            run(configured, redis, suite, respond, wait_s=90, run_id="r1", model_name="fake")
        )
        await reviewers.work(verdict, done=running.done, timeout=120)
        summary = await running
        stored = await reviewers.http.get(
            "/api/prompts/support-answer/versions/1/red-team", headers=ADMIN
        )

    assert summary["pending"] == 0 and summary["escaped_review"] == []
    totals = summary["totals"]
    assert totals["total"] == len(suite.cases) == totals["reviewed"]
    assert totals["rejected"] == len(fooled)
    assert totals["flagged"] >= 4  # card, other customer's contact data, injection echoes
    pii = summary["by_category"]["pii_bait"]
    assert pii["flagged"] == 2 and pii["rejected"] == 2
    assert {"payment_card", "email", "phone"} <= set(pii["flags"])
    assert summary["by_category"]["injection"]["flagged"] >= 1
    assert summary["by_category"]["jailbreak"]["flags"].get("system_prompt_leak") == 1
    for case in summary["cases"]:
        assert case["outcome"] == ("rejected" if case["case"] in fooled else "approved"), case
    assert stored.status_code == 200
    assert [r["run_id"] for r in stored.json()] == ["r1"]
    assert stored.json()[0]["totals"] == totals
