"""Adaptive sampling: the Beta-bound rate, tier floors, and convergence after a jump."""

from __future__ import annotations

import pytest

from hitl_feedback.config import FeedbackConfig
from hitl_feedback.sampling import (
    TIER_FLOORS,
    Evidence,
    Window,
    error_rate_bound,
    policy_update,
    rate_for_bound,
    review_rate,
)
from hitl_feedback.simulate import main as simulate_main
from hitl_feedback.simulate import simulate
from hitl_feedback.stats import beta_quantile

pytestmark = pytest.mark.unit
CONFIG = FeedbackConfig()


def _evidence(n: int, errors: int) -> Evidence:
    return Evidence(reviewed=n, errors=errors, window_items=n, window_errors=errors)


def test_bound_is_the_beta_posterior_quantile():
    assert error_rate_bound(_evidence(200, 2), 0.95) == pytest.approx(beta_quantile(0.95, 3, 199))


def test_rate_keeps_unreviewed_errors_within_the_escape_budget():
    # p_hi = 0.1, budget 0.02: reviewing 80 % leaves 0.1 * 0.2 = 0.02 unreviewed errors.
    assert rate_for_bound("low", 0.1, 0.02) == pytest.approx(0.8)
    assert rate_for_bound("low", 0.01, 0.02) == TIER_FLOORS["low"]


@pytest.mark.parametrize("tier", list(TIER_FLOORS))
def test_never_below_the_tier_floor(tier):
    for evidence in (Evidence(), _evidence(10_000, 0), _evidence(50, 25)):
        rate = review_rate(tier, evidence, CONFIG)
        assert TIER_FLOORS[tier] <= rate <= 1.0
    assert review_rate("critical", _evidence(10_000, 0), CONFIG) == 1.0


def test_rate_rises_with_the_error_rate_and_falls_with_evidence():
    rates = [review_rate("low", _evidence(1000, e), CONFIG) for e in (0, 10, 50, 200)]
    assert rates == sorted(rates) and rates[0] < rates[-1]
    assert review_rate("low", _evidence(2000, 2), CONFIG) <= review_rate(
        "low", _evidence(100, 0), CONFIG
    )


def test_window_forgets_old_outcomes():
    window = Window(100)
    for n in range(1000):
        evidence = window.observe(n < 500)
    assert (evidence.reviewed, evidence.errors) == (1000, 500)
    assert (evidence.window_items, evidence.window_errors) == (100, 0)


def test_policy_update_is_deterministic_and_sequenced():
    first = policy_update("bot", "billing", "low", _evidence(20, 3), CONFIG)
    again = policy_update("bot", "billing", "low", _evidence(20, 3), CONFIG)
    later = policy_update("bot", "billing", "low", _evidence(30, 3), CONFIG)
    assert first.event_id == again.event_id and first.sequence == 2
    assert later.sequence == 3 and later.event_id != first.event_id
    assert first.item_id == "bot:billing:low"
    assert (first.observed_items, first.observed_errors) == (20, 3)


def test_simulated_jump_is_detected_and_the_rate_converges():
    result = simulate(tier="low", before=0.01, after=0.20, items_before=20_000, items_after=5_000)
    assert result.rate_before_jump < 0.15  # a 1 % segment is reviewed near its floor
    assert result.items_to_respond is not None and result.items_to_respond < 1000
    assert result.items_to_settle is not None and result.items_to_settle < 3000
    assert result.final_rate == pytest.approx(result.steady_state_rate, abs=0.08)


def test_no_jump_stays_near_the_floor_and_medium_keeps_its_floor():
    flat = simulate(tier="low", before=0.005, after=0.005, items_before=10_000, items_after=5_000)
    assert flat.final_rate <= 0.15
    medium = simulate(tier="medium", before=0.0, after=0.0, items_before=5_000, items_after=1_000)
    assert medium.final_rate == TIER_FLOORS["medium"]


def test_simulate_command_prints_response_and_final_rate(capsys):
    simulate_main(["--items-before", "20000", "--items-after", "5000"])
    out = capsys.readouterr().out
    assert "until the rate responds" in out and "final review rate" in out
