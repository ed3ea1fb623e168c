"""Red-team suites and summaries as pure logic."""

from __future__ import annotations

import pytest

from examples.red_team.fake_model import respond
from hitl_review_api.prompts.red_team import (
    Observed,
    build_outputs,
    item_id,
    load_suite,
    parser,
    suite_path,
    summarize,
)
from hitl_shared.events import Release, RoutingDecision, ScreenedOutput
from hitl_shared.prompts import TemplateContent, new_version
from tests.factories import flag
from tests.prompts.test_red_team import TEMPLATE

pytestmark = pytest.mark.unit


def _version():
    return new_version(
        "support-answer", "1", TemplateContent.model_validate(TEMPLATE["content"]), "ann"
    )


def test_the_shipped_suite_covers_every_category():
    suite = load_suite(suite_path("support-bot"))
    assert suite.app == "support-bot" and suite.template_id == "support-answer"
    assert {c.category for c in suite.cases} == {
        "jailbreak",
        "injection",
        "pii_bait",
        "policy_edge",
    }


def test_outputs_are_rendered_tagged_and_stamped():
    suite = load_suite(suite_path("support-bot"))
    outputs = build_outputs(suite, _version(), respond, "r1", "fake")
    assert len(outputs) == len(suite.cases)
    first = outputs[0]
    assert first.item_id == "rt-r1-jb-dan"
    assert first.metadata["red_team"] is True and first.metadata["red_team_category"] == "jailbreak"
    assert (first.prompt_template_id, first.prompt_template_version) == ("support-answer", "1")
    assert suite.cases[0].input in first.prompt and "## Constraints" in first.prompt
    with_context = next(o for o in outputs if o.metadata["red_team_case"] == "inj-context")
    assert "evil.example" in with_context.context[0].text


def test_summary_counts_by_category():
    suite = load_suite(suite_path("support-bot"))
    version = _version()
    outputs = {o.item_id: o for o in build_outputs(suite, version, respond, "r1", "fake")}
    card = item_id("r1", next(c for c in suite.cases if c.id == "pii-card"))
    refusal = item_id("r1", next(c for c in suite.cases if c.id == "pii-ssn"))
    card_flag = flag(end=4, explanation="card")
    observed = Observed(
        screened={
            card: ScreenedOutput(item_id=card, output=outputs[card], flags=(card_flag,)),
            refusal: ScreenedOutput(item_id=refusal, output=outputs[refusal]),
        },
        decisions={
            key: RoutingDecision(
                item_id=key,
                app="support-bot",
                use_case="billing",
                tier=tier,
                risk_score=0.5,
                mode="sequential",
                action=action,
                review_probability=1.0,
                sampled=True,
                policy_version="p",
            )
            for key, tier, action in ((card, "critical", "hold"), (refusal, "low", "release"))
        },
        released={
            card: Release(
                item_id=card, app="support-bot", outcome="rejected", text="x", policy_version="p"
            ),
            refusal: Release(
                item_id=refusal,
                app="support-bot",
                outcome="auto_released",
                text="x",
                policy_version="p",
            ),
        },
    )
    summary = summarize(suite, "r1", version, observed)
    pii = summary["by_category"]["pii_bait"]
    assert pii == {
        "total": 3,
        "flagged": 1,
        "reviewed": 1,
        "rejected": 1,
        "outcomes": {"auto_released": 1, "pending": 1, "rejected": 1},
        "flags": {"payment_card": 1},
    }
    assert summary["escaped_review"] == ["pii-ssn"]
    assert summary["totals"] == {"total": 12, "flagged": 1, "reviewed": 1, "rejected": 1}
    assert summary["pending"] == 10
    assert (summary["template_id"], summary["version"]) == ("support-answer", "1")


def test_cli_arguments():
    args = parser().parse_args(["--app", "support-bot", "--wait", "5"])
    assert (args.app, args.model, args.wait, args.version) == (
        "support-bot",
        "examples.red_team.fake_model:respond",
        5.0,
        None,
    )
