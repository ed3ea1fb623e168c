"""Pure routing logic: a screened output in, a decision that explains itself out.

No I/O here. The live inputs beside the policy (adaptive rates from the feedback loop,
kill switches) come in as a ``Live`` value, so every decision is a function of
(item, policy, live) and can be replayed and audited.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from hitl_router.policy import TIERS, Policy, TierRule, default_policy
from hitl_shared.events import (
    Action,
    DeliveryMode,
    ReviewerLevel,
    RoutingDecision,
    ScreenedOutput,
    Tier,
)

__all__ = [
    "Live",
    "Policy",
    "SegmentRate",
    "TierRule",
    "decide",
    "decision_event_id",
    "default_policy",
    "review_probability",
    "sample_unit",
]

_DECISION_NS = uuid.UUID("0b7d2f4e-51c6-4c1a-8f0e-2a9d6c3b1e77")
TARGETED_SPREAD = 0.8  # targeted sampling: rate x (0.6 .. 1.4) across the tier's band


@dataclass(frozen=True)
class SegmentRate:
    """A review rate for one (app, use case, tier) from the feedback loop."""

    rate: float
    sequence: int
    error_rate: float | None = None


@dataclass(frozen=True)
class Live:
    """Runtime inputs to a decision that are not in the policy file."""

    rates: Mapping[tuple[str, str, str], SegmentRate] = field(default_factory=dict)
    killed: frozenset[str] = frozenset()


def sample_unit(item_id: str, policy_version: str) -> float:
    """A uniform number in [0, 1) fixed by item id and policy version (reproducible)."""
    digest = hashlib.sha256(f"{policy_version}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def decision_event_id(item_id: str) -> str:
    """One decision per item: a redelivered item republishes the same event id."""
    return str(uuid.uuid5(_DECISION_NS, f"decision:{item_id}"))


def _raise_to(current: Tier, floor: Tier | None) -> Tier:
    if floor is None:
        return current
    return TIERS[max(TIERS.index(current), TIERS.index(floor))]


def _tier_of_score(score: float, policy: Policy) -> Tier:
    chosen: Tier = "low"
    for name in TIERS:
        if score >= policy.tiers[name].min_risk:
            chosen = name
    return chosen


def _band_position(score: float, tier: Tier, policy: Policy) -> float:
    """Where the score sits inside its tier's band, 0 (bottom) .. 1 (top)."""
    low = policy.tiers[tier].min_risk
    index = TIERS.index(tier)
    high = policy.tiers[TIERS[index + 1]].min_risk if index + 1 < len(TIERS) else 1.0
    if high <= low:
        return 1.0
    return min(1.0, max(0.0, (score - low) / (high - low)))


def _confidence(screened: ScreenedOutput) -> float | None:
    output = screened.output
    if output.confidence is not None:
        return output.confidence
    if output.token_logprobs:
        mean = sum(output.token_logprobs) / len(output.token_logprobs)
        return min(1.0, math.exp(min(0.0, mean)))
    return None


@dataclass
class _Assessment:
    score: float
    tier: Tier
    confidence: float | None
    flag_score: float
    flag_categories: frozenset[str]
    rules: list[str]


def assess(screened: ScreenedOutput, policy: Policy) -> _Assessment:
    """Risk score and tier with the rule behind every raise."""
    output = screened.output
    app = policy.app(output.app)
    case = app.use_cases.get(output.use_case)
    domain = next(
        v
        for v in (
            case.domain_sensitivity if case else None,
            app.domain_sensitivity,
            policy.default_domain_sensitivity,
        )
        if v is not None
    )
    harm = next(
        v
        for v in (
            case.harm_magnitude if case else None,
            app.harm_magnitude,
            policy.default_harm_magnitude,
        )
        if v is not None
    )
    vulnerability = policy.vulnerability.get(output.user_vulnerability, 1.0)
    confidence = _confidence(screened)
    w = policy.weights
    score = (
        w.domain_sensitivity * domain
        + w.harm_magnitude * harm
        + w.user_vulnerability * vulnerability
        + w.low_confidence * (1.0 - (confidence if confidence is not None else 0.5))
    )
    score = round(min(1.0, max(0.0, score)), 4)
    tier = _tier_of_score(score, policy)
    rules = [f"risk:{score:.3f}->{tier}"]
    if confidence is None:
        rules.append("confidence:unknown")

    counted = [f for f in screened.flags if f.score >= policy.min_flag_score]
    for flag in counted:
        raised = _raise_to(tier, policy.severity_tier.get(flag.severity))
        rules.append(f"flag:{flag.detector}/{flag.category}:{flag.severity}")
        tier = raised
    if counted and output.user_vulnerability in policy.vulnerable_escalation:
        tier = TIERS[min(len(TIERS) - 1, TIERS.index(tier) + 1)]
        rules.append(f"vulnerable_user:{output.user_vulnerability}->{tier}")
    if confidence is not None:
        for rule in policy.confidence:
            if confidence < rule.below:
                raised = _raise_to(tier, rule.min_tier)
                if raised != tier:
                    rules.append(f"confidence<{rule.below}->{raised}")
                tier = raised
    if screened.detector_errors:
        tier = _raise_to(tier, policy.detector_error_tier)
        rules.append(f"detector_error:{','.join(sorted(screened.detector_errors))[:80]}")
    return _Assessment(
        score=score,
        tier=tier,
        confidence=confidence,
        flag_score=max((f.score for f in counted), default=0.0),
        flag_categories=frozenset(f.category for f in counted),
        rules=rules,
    )


def effective_mode(screened: ScreenedOutput, policy: Policy) -> tuple[DeliveryMode, str]:
    """The concrete mode for this item; hybrid picks one per content category."""
    output = screened.output
    app = policy.app(output.app)
    case = app.use_cases.get(output.use_case)
    configured = (case.mode if case else None) or app.mode or policy.default_mode
    if configured != "hybrid":
        return configured, f"mode:{configured}"
    chosen = app.categories.get(output.content_category, "sequential")
    return chosen, f"mode:hybrid[{output.content_category}]->{chosen}"


def review_probability(
    rule: TierRule,
    *,
    rate: float,
    mode: DeliveryMode,
    band_position: float,
    confidence: float | None,
    flag_score: float,
    error_rate: float | None,
    boosts: tuple[float, float, float] = (1.0, 1.0, 4.0),
) -> float:
    """The probability an item is reviewed; never below the tier's floor, never above 1."""
    base = max(rule.floor, min(1.0, rate))
    if mode == "adaptive":
        confidence_boost, flag_boost, error_boost = boosts
        lift = (
            confidence_boost * (1.0 - (confidence if confidence is not None else 0.5))
            + flag_boost * flag_score
            + error_boost * (error_rate or 0.0)
        )
        probability = base * (1.0 + lift)
    elif rule.sampling == "targeted":
        probability = base * (1.0 - TARGETED_SPREAD / 2 + TARGETED_SPREAD * band_position)
    else:
        probability = base
    return round(max(rule.floor, min(1.0, probability)), 6)


def decide(screened: ScreenedOutput, policy: Policy, live: Live | None = None) -> RoutingDecision:
    live = live or Live()
    output = screened.output
    found = assess(screened, policy)
    tier = found.tier
    rule = policy.tiers[tier]
    rules = [f"tier:{tier}", *found.rules]
    mode, mode_rule = effective_mode(screened, policy)
    rules.append(mode_rule)

    rate = rule.review_rate
    segment = live.rates.get((output.app, output.use_case, tier))
    if segment is not None:
        rate = max(rule.floor, segment.rate)
        rules.append(f"rate:feedback#{segment.sequence}={rate:.4f}")
    adaptive = policy.adaptive
    probability = review_probability(
        rule,
        rate=rate,
        mode=mode,
        band_position=_band_position(found.score, tier, policy),
        confidence=found.confidence,
        flag_score=found.flag_score,
        error_rate=segment.error_rate if segment else None,
        boosts=(adaptive.confidence_boost, adaptive.flag_boost, adaptive.error_rate_boost),
    )
    sampled = sample_unit(screened.item_id, policy.version) < probability
    level: ReviewerLevel = rule.level
    action: Action
    blocked = next(
        (
            b
            for b in policy.block
            if tier in b.tiers and found.flag_categories.intersection(b.categories)
        ),
        None,
    )
    if blocked is not None:
        probability, sampled, action, level = 1.0, True, "block", blocked.level
        rules.append(f"block:{','.join(sorted(found.flag_categories & set(blocked.categories)))}")
    elif output.app in live.killed:
        probability, sampled, action = 1.0, True, "hold"
        rules.append(f"kill_switch:{output.app}")
    elif output.metadata.get("red_team") is True:
        probability, sampled, action = 1.0, True, "hold"
        rules.append("red_team")
    elif not sampled:
        action = "release"
    elif mode == "parallel" and not rule.hold_always:
        action = "release_and_review"
    else:
        action = "hold"
    rules.append(f"sample:{probability:.4f}:{'in' if sampled else 'out'}")
    return RoutingDecision(
        event_id=decision_event_id(screened.item_id),
        item_id=screened.item_id,
        app=output.app,
        use_case=output.use_case,
        tier=tier,
        risk_score=found.score,
        mode=mode,
        action=action,
        review_probability=probability,
        sampled=sampled,
        rules_fired=tuple(rules),
        policy_version=policy.version,
        required_level=level,
        approvals_required=rule.approvals if sampled else 0,
    )


def task_skill(screened: ScreenedOutput, tier: Tier, policy: Policy) -> str:
    """Specialist tiers go to the content category's queue when it is a known skill."""
    category = screened.output.content_category
    if policy.tiers[tier].specialist and category in policy.specialist_skills:
        return category
    return "general"
