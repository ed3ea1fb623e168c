"""The routing policy: a versioned YAML file, validated by pydantic, reloaded on change.

The package ships ``policy.yaml`` as the default; ``HITL_POLICY_FILE`` points at an
operator's own. ``PolicySource`` re-reads the file when its mtime changes and keeps the
previous policy (with one clear log line) when the new file is invalid, so a typo
never takes the router down or silently empties the rules.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hitl_shared.events import DeliveryMode, ReviewerLevel, Severity, Tier

log = logging.getLogger("hitl.router.policy")

TIERS: tuple[Tier, ...] = ("low", "medium", "high", "critical")
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
ConcreteMode = Literal["sequential", "parallel", "adaptive"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TierRule(_Strict):
    """One row of the tier table: entry score, review rate, floor, who reviews."""

    min_risk: Unit
    review_rate: Unit
    floor: Unit
    sampling: Literal["random", "targeted"] = "random"
    level: ReviewerLevel = "L1"
    approvals: int = Field(default=1, ge=1, le=5)
    specialist: bool = False
    hold_always: bool = Field(
        default=False, description="sampled items are held even in parallel mode"
    )
    sla_minutes: float = Field(gt=0)

    @model_validator(mode="after")
    def _floor_below_rate(self) -> TierRule:
        if self.floor > self.review_rate:
            raise ValueError(f"floor {self.floor} is above review_rate {self.review_rate}")
        return self


class UseCaseRisk(_Strict):
    domain_sensitivity: Unit | None = None
    harm_magnitude: Unit | None = None
    mode: DeliveryMode | None = None


class AppPolicy(_Strict):
    """Risk dimensions and delivery of one app; use cases may override the dimensions."""

    domain_sensitivity: Unit | None = None
    harm_magnitude: Unit | None = None
    mode: DeliveryMode | None = None
    categories: dict[str, ConcreteMode] = Field(
        default_factory=dict, description="hybrid mode: delivery per content category"
    )
    fallback_text: str | None = Field(default=None, min_length=1, max_length=2000)
    use_cases: dict[str, UseCaseRisk] = Field(default_factory=dict)


class Weights(_Strict):
    """Weights of the risk score; they must sum to 1 so the score stays in [0, 1]."""

    domain_sensitivity: Unit = 0.25
    harm_magnitude: Unit = 0.25
    user_vulnerability: Unit = 0.25
    low_confidence: Unit = 0.25

    @model_validator(mode="after")
    def _sum_to_one(self) -> Weights:
        total = (
            self.domain_sensitivity
            + self.harm_magnitude
            + self.user_vulnerability
            + self.low_confidence
        )
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"risk weights must sum to 1, they sum to {total:.3f}")
        return self


class ConfidenceRule(_Strict):
    below: Unit
    min_tier: Tier


class Adaptive(_Strict):
    """Adaptive mode: probability = tier rate x (1 + boosts), never below the floor."""

    confidence_boost: float = Field(default=1.0, ge=0)
    flag_boost: float = Field(default=1.0, ge=0)
    error_rate_boost: float = Field(default=4.0, ge=0)


class BlockRule(_Strict):
    """Hold with no auto-release at all, sent to a senior queue (e.g. leaked secrets)."""

    categories: tuple[str, ...]
    tiers: tuple[Tier, ...] = ("critical",)
    level: ReviewerLevel = "L3"


class Escalation(_Strict):
    """How often the router sweeps the queues, and the wait between two escalations."""

    sweep_seconds: float = Field(default=5.0, gt=0)
    step_minutes: float = Field(default=15.0, gt=0)


class Policy(_Strict):
    version: str = Field(min_length=1, max_length=64)
    default_mode: DeliveryMode = "sequential"
    default_domain_sensitivity: Unit = 0.3
    default_harm_magnitude: Unit = 0.3
    fallback_text: str = Field(min_length=1, max_length=2000)
    weights: Weights = Weights()
    vulnerability: dict[str, Unit] = Field(
        default_factory=lambda: {"none": 0.0, "low": 0.25, "elevated": 0.6, "high": 1.0}
    )
    severity_tier: dict[Severity, Tier | None] = Field(
        default_factory=lambda: {
            "info": None,
            "low": None,
            "medium": "medium",
            "high": "high",
            "critical": "critical",
        }
    )
    min_flag_score: Unit = 0.5
    confidence: tuple[ConfidenceRule, ...] = ()
    vulnerable_escalation: tuple[str, ...] = Field(
        default=("high",), description="vulnerabilities that raise a flagged item one tier"
    )
    detector_error_tier: Tier = "high"
    tiers: dict[Tier, TierRule]
    specialist_skills: tuple[str, ...] = ()
    adaptive: Adaptive = Adaptive()
    block: tuple[BlockRule, ...] = ()
    escalation: Escalation = Escalation()
    apps: dict[str, AppPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete_ordered_tiers(self) -> Policy:
        missing = [t for t in TIERS if t not in self.tiers]
        if missing:
            raise ValueError(f"tier table lacks {', '.join(missing)}")
        entries = [self.tiers[t].min_risk for t in TIERS]
        if entries != sorted(entries) or entries[0] != 0.0:
            raise ValueError("tier min_risk must start at 0 and rise from low to critical")
        return self

    def app(self, name: str) -> AppPolicy:
        return self.apps.get(name) or AppPolicy()

    def fallback_for(self, app: str) -> str:
        return self.app(app).fallback_text or self.fallback_text


class PolicyError(ValueError):
    """A policy file that cannot be read or fails validation; the message says where."""


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the policy must be a mapping at the top level")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise PolicyError(f"{source}: invalid policy: {problems}") from exc


def default_policy_text() -> str:
    return resources.files("hitl_router").joinpath("policy.yaml").read_text(encoding="utf-8")


def default_policy() -> Policy:
    """The policy shipped with the package."""
    return parse_policy(default_policy_text(), source="hitl_router/policy.yaml")


class PolicySource:
    """The current policy, re-read from its file whenever the file's mtime changes."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self._mtime: float | None = None
        self.last_error: str | None = None
        if self.path is None:
            self.policy = default_policy()
        else:
            self._mtime = self.path.stat().st_mtime
            self.policy = parse_policy(self.path.read_text(encoding="utf-8"), source=str(self.path))

    def refresh(self) -> bool:
        """Reload if the file changed; True when a new policy took effect."""
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            return self._reject(f"{self.path}: cannot stat: {exc}", None)
        if mtime == self._mtime:
            return False
        try:
            policy = parse_policy(self.path.read_text(encoding="utf-8"), source=str(self.path))
        except (OSError, PolicyError) as exc:
            return self._reject(str(exc), mtime)
        self._mtime, self.last_error = mtime, None
        if policy == self.policy:
            return False
        log.info("policy %s -> %s loaded from %s", self.policy.version, policy.version, self.path)
        self.policy = policy
        return True

    def _reject(self, reason: str, mtime: float | None) -> bool:
        if reason != self.last_error:
            log.error("%s; keeping policy %s", reason, self.policy.version)
        self.last_error = reason
        if mtime is not None:
            self._mtime = mtime
        return False
