"""Pure routing logic: a screened output in, a decision that explains itself out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from hitl_shared.events import (
    Action,
    DeliveryMode,
    ReviewerLevel,
    RoutingDecision,
    ScreenedOutput,
    Tier,
)

SEVERITY_RISK = {"info": 0.05, "low": 0.2, "medium": 0.45, "high": 0.7, "critical": 0.95}
VULNERABILITY_RISK = {"none": 0.0, "low": 0.1, "elevated": 0.25, "high": 0.4}


@dataclass(frozen=True)
class TierRule:
    min_risk: float
    review_rate: float
    level: ReviewerLevel
    approvals: int


@dataclass(frozen=True)
class Policy:
    version: str = "default-1"
    mode: DeliveryMode = "sequential"
    tiers: dict[Tier, TierRule] = field(
        default_factory=lambda: {
            "low": TierRule(0.0, 0.05, "L1", 1),
            "medium": TierRule(0.3, 0.25, "L1", 1),
            "high": TierRule(0.6, 0.75, "L2", 1),
            "critical": TierRule(0.85, 1.0, "L2", 2),
        }
    )


def sample_unit(item_id: str, policy_version: str) -> float:
    """A uniform number in [0, 1) fixed by item id and policy version (reproducible)."""
    digest = hashlib.sha256(f"{policy_version}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def risk_of(screened: ScreenedOutput) -> tuple[float, list[str]]:
    rules: list[str] = []
    risk = 0.0
    for flag in screened.flags:
        value = SEVERITY_RISK[flag.severity] * max(flag.score, 0.5)
        if value > risk:
            risk = value
        rules.append(f"flag:{flag.detector}/{flag.category}:{flag.severity}")
    vulnerability = VULNERABILITY_RISK[screened.output.user_vulnerability]
    if vulnerability:
        rules.append(f"user_vulnerability:{screened.output.user_vulnerability}")
    risk = min(1.0, risk + vulnerability)
    if screened.detector_errors:
        rules.append("detector_error")
        risk = max(risk, 0.6)
    return risk, sorted(set(rules))


def tier_for(risk: float, policy: Policy) -> Tier:
    chosen: Tier = "low"
    for name, rule in policy.tiers.items():
        if risk >= rule.min_risk and rule.min_risk >= policy.tiers[chosen].min_risk:
            chosen = name
    return chosen


def decide(screened: ScreenedOutput, policy: Policy) -> RoutingDecision:
    risk, rules = risk_of(screened)
    tier = tier_for(risk, policy)
    rule = policy.tiers[tier]
    sampled = sample_unit(screened.item_id, policy.version) < rule.review_rate
    action: Action
    if not sampled:
        action = "release"
    elif policy.mode == "parallel" and tier in ("low", "medium"):
        action = "release_and_review"
    else:
        action = "hold"
    output = screened.output
    return RoutingDecision(
        item_id=screened.item_id,
        app=output.app,
        use_case=output.use_case,
        tier=tier,
        risk_score=round(risk, 4),
        mode=policy.mode,
        action=action,
        review_probability=rule.review_rate,
        sampled=sampled,
        rules_fired=(f"tier:{tier}", *rules),
        policy_version=policy.version,
        required_level=rule.level,
        approvals_required=rule.approvals,
    )
