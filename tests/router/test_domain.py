"""Routing decisions as pure functions: tiers, sampling rates, floors, modes, reasons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from hitl_router.domain import Live, SegmentRate, decide, default_policy, sample_unit
from hitl_router.policy import Policy
from hitl_shared.events import Flag, ScreenedOutput
from tests.factories import flag, llm_output

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
N_ITEMS = 100_000


def _policy(**changes: object) -> Policy:
    """The shipped policy with a score driven by confidence alone (uniform bands)."""
    data = default_policy().model_dump()
    data.update(
        {
            "weights": {
                "domain_sensitivity": 0.0,
                "harm_magnitude": 0.0,
                "user_vulnerability": 0.0,
                "low_confidence": 1.0,
            },
            "confidence": [],
            "default_mode": "sequential",
            "apps": {},
        }
    )
    data.update(changes)
    return Policy.model_validate(data)


def _screened(item_id: str, **overrides: object) -> ScreenedOutput:
    flags = overrides.pop("flags", ())
    output = llm_output(item_id, **{"app": "synthetic", **overrides})
    return ScreenedOutput(item_id=item_id, output=output, flags=flags)


def _synthetic(n: int = N_ITEMS) -> list[ScreenedOutput]:
    """Confidence spread evenly over [0, 1): every tier's band is covered uniformly."""
    return [_screened(f"syn-{i}", confidence=((i * 7919) % n) / n) for i in range(n)]


@pytest.fixture(scope="module")
def items() -> list[ScreenedOutput]:
    return _synthetic()


@pytest.fixture(scope="module")
def base_decisions(items):
    policy = _policy()
    return [decide(s, policy) for s in items]


def _rates(decisions) -> dict[str, float]:
    seen, sampled = Counter(), Counter()
    for d in decisions:
        seen[d.tier] += 1
        sampled[d.tier] += d.sampled
    return {tier: sampled[tier] / seen[tier] for tier in seen}


def test_measured_review_rates_match_the_tier_table_within_one_point(base_decisions):
    policy = _policy()
    decisions = base_decisions
    rates = _rates(decisions)
    assert set(rates) == {"low", "medium", "high", "critical"}
    for tier, measured in rates.items():
        target = policy.tiers[tier].review_rate
        assert abs(measured - target) <= 0.01, (tier, measured, target)
    assert all(d.action in ("release", "hold") for d in decisions)


def test_targeted_medium_tier_reviews_riskier_items_more(base_decisions):
    medium = [d for d in base_decisions if d.tier == "medium"]
    low_half = [d for d in medium if d.risk_score < 0.475]
    high_half = [d for d in medium if d.risk_score >= 0.475]
    assert sum(d.sampled for d in high_half) / len(high_half) > 0.28
    assert sum(d.sampled for d in low_half) / len(low_half) < 0.22


def test_adaptive_updates_never_take_a_tier_below_its_floor(items):
    policy = _policy()
    asked = {"low": 0.0, "medium": 0.02, "high": 0.9, "critical": 0.1}
    live = Live(
        rates={
            ("synthetic", "billing", tier): SegmentRate(rate, sequence=7)
            for tier, rate in asked.items()
        }
    )
    decisions = [decide(s, policy, live) for s in items]
    for d in decisions:
        assert d.review_probability >= policy.tiers[d.tier].floor
    rates = _rates(decisions)
    assert abs(rates["low"] - policy.tiers["low"].floor) <= 0.01
    assert rates["medium"] >= policy.tiers["medium"].floor - 0.01
    assert abs(rates["high"] - 0.9) <= 0.01
    assert rates["critical"] == 1.0
    assert all(any(r.startswith("rate:feedback#7") for r in d.rules_fired) for d in decisions)


def test_adaptive_mode_probability_rises_with_doubt_flags_and_error_rate():
    policy = _policy(default_mode="adaptive", weights=default_policy().weights.model_dump())
    calm = decide(_screened("a-1", confidence=0.95), policy)
    doubtful = decide(_screened("a-1", confidence=0.65), policy)
    insult = flag(detector="tox", category="insult", severity="low", score=0.9, end=3)
    flagged = decide(_screened("a-1", confidence=0.95, flags=(insult,)), policy)
    erring = decide(
        _screened("a-1", confidence=0.95),
        policy,
        Live(rates={("synthetic", "billing", calm.tier): SegmentRate(0.07, 1, error_rate=0.2)}),
    )
    assert calm.mode == "adaptive"
    assert calm.tier == doubtful.tier == flagged.tier == erring.tier == "low"
    base = calm.review_probability
    assert policy.tiers["low"].floor <= base
    assert doubtful.review_probability > base
    assert flagged.review_probability > base
    assert erring.review_probability > base


def test_critical_flags_hold_everything_for_two_approvals_with_a_senior():
    policy = default_policy()
    decisions = [decide(_screened(f"c-{i}", flags=(flag(),)), policy) for i in range(500)]
    assert {d.tier for d in decisions} == {"critical"}
    assert all(d.action == "hold" and d.sampled for d in decisions)
    assert {d.approvals_required for d in decisions} == {2}
    assert {d.required_level for d in decisions} == {"L2"}


def test_secrets_are_blocked_for_a_senior_even_in_parallel_mode():
    key = flag(
        detector="secrets", category="api_key", score=0.97, end=20, explanation="AWS access key"
    )
    d = decide(_screened("s-1", app="marketing-copy", flags=(key,)), default_policy())
    assert d.action == "block" and d.required_level == "L3"
    assert "block:api_key" in d.rules_fired


def test_hybrid_mode_picks_delivery_per_content_category():
    policy = default_policy()
    out = llm_output("h-1", content_category="smalltalk")
    chat = decide(ScreenedOutput(item_id="h-1", output=out), policy)
    billing = decide(ScreenedOutput(item_id="h-1", output=llm_output("h-1")), policy)
    assert chat.mode == "parallel" and "mode:hybrid[smalltalk]->parallel" in chat.rules_fired
    assert billing.mode == "sequential"
    parallel = [
        decide(
            ScreenedOutput(
                item_id=f"p-{i}", output=llm_output(f"p-{i}", content_category="smalltalk")
            ),
            policy,
        )
        for i in range(400)
    ]
    actions = Counter(d.action for d in parallel)
    assert set(actions) == {"release", "release_and_review"}


def test_kill_switch_holds_every_item_of_the_app_and_says_so():
    policy = default_policy()
    live = Live(killed=frozenset({"support-bot"}))
    decisions = [
        decide(ScreenedOutput(item_id=f"k-{i}", output=llm_output(f"k-{i}")), policy, live)
        for i in range(200)
    ]
    assert all(d.action == "hold" and d.sampled for d in decisions)
    assert all("kill_switch:support-bot" in d.rules_fired for d in decisions)
    other = decide(_screened("k-x"), policy, live)
    assert "kill_switch:support-bot" not in other.rules_fired


def test_red_team_outputs_are_always_held_for_review():
    policy = default_policy()
    tagged = [decide(_screened(f"rt-{n}", metadata={"red_team": True}), policy) for n in range(200)]
    assert all(d.action == "hold" and d.sampled for d in tagged)
    assert all("red_team" in d.rules_fired for d in tagged)
    untagged = decide(_screened("rt-plain"), policy)
    assert "red_team" not in untagged.rules_fired


def test_decisions_explain_themselves():
    d = decide(ScreenedOutput(item_id="e-1", output=llm_output("e-1")), default_policy())
    assert d.policy_version == default_policy().version
    assert d.rules_fired[0] == f"tier:{d.tier}"
    assert any(r.startswith("risk:") for r in d.rules_fired)
    assert any(r.startswith("mode:") for r in d.rules_fired)
    assert any(r.startswith("sample:") for r in d.rules_fired)


_REPLAY = """
import json, sys
from hitl_router.domain import decide, default_policy
from hitl_shared.events import ScreenedOutput
items = [ScreenedOutput.model_validate_json(line) for line in sys.stdin]
for s in items:
    print(decide(s, default_policy()).model_dump_json(exclude={"occurred_at"}))
"""


def test_same_item_same_policy_same_decision_in_a_fresh_process():
    items = [
        ScreenedOutput(
            item_id=f"r-{i}",
            output=llm_output(f"r-{i}", confidence=(i % 10) / 10, content_category="smalltalk"),
        )
        for i in range(300)
    ]
    here = [decide(s, default_policy()).model_dump(exclude={"occurred_at"}) for s in items]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT / "services/router")]),
    }
    fresh = subprocess.run(
        [sys.executable, "-c", _REPLAY],
        input="\n".join(s.model_dump_json() for s in items),
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    there = [json.loads(line) for line in fresh.stdout.splitlines()]
    assert [json.loads(json.dumps(h, default=str)) for h in here] == there
    assert len({d["event_id"] for d in there}) == len(items)
    by_action = defaultdict(int)
    for d in there:
        by_action[d["action"]] += 1
    assert by_action["release"] and by_action["release_and_review"]


def test_sample_unit_is_uniform_and_salted_by_version():
    units = [sample_unit(f"u-{i}", "v1") for i in range(20_000)]
    assert all(0.0 <= u < 1.0 for u in units)
    assert abs(sum(units) / len(units) - 0.5) < 0.01
    assert sample_unit("u-1", "v1") != sample_unit("u-1", "v2")


_flags = st.lists(
    st.builds(
        Flag,
        detector=st.sampled_from(["pii", "tox", "secrets"]),
        category=st.sampled_from(["email", "insult", "api_token", "payment_card"]),
        severity=st.sampled_from(["info", "low", "medium", "high", "critical"]),
        score=st.floats(0, 1),
        start=st.just(0),
        end=st.just(3),
        explanation=st.just("x"),
    ),
    max_size=3,
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    confidence=st.one_of(st.none(), st.floats(0, 1)),
    vulnerability=st.sampled_from(["none", "low", "elevated", "high"]),
    app=st.sampled_from(["support-bot", "health-assistant", "marketing-copy", "other"]),
    category=st.sampled_from(["billing", "smalltalk", "medical", "general"]),
    flags=_flags,
    asked=st.floats(0, 1),
    killed=st.booleans(),
)
def test_any_item_gets_a_floored_explained_reproducible_decision(
    confidence, vulnerability, app, category, flags, asked, killed
):
    policy = default_policy()
    item = ScreenedOutput(
        item_id="prop-1",
        output=llm_output(
            "prop-1",
            app=app,
            content_category=category,
            confidence=confidence,
            user_vulnerability=vulnerability,
        ),
        flags=tuple(flags),
    )
    live = Live(
        rates={(app, "billing", t): SegmentRate(asked, 1) for t in policy.tiers},
        killed=frozenset({app} if killed else ()),
    )
    d = decide(item, policy, live)
    assert d.review_probability >= policy.tiers[d.tier].floor
    assert d.sampled == (d.action != "release")
    if killed or d.tier == "critical":
        assert d.action in ("hold", "block")
    assert d.rules_fired[0] == f"tier:{d.tier}" and d.policy_version == policy.version
    assert decide(item, policy, live).model_dump(exclude={"occurred_at"}) == d.model_dump(
        exclude={"occurred_at"}
    )
