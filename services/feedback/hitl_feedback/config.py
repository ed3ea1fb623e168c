"""Feedback-loop configuration: cost per issue category and the adaptive-sampling knobs.

Read from ``HITL_FEEDBACK_*`` environment variables (``HITL_FEEDBACK_COSTS`` as JSON),
so a deployment states what a caught error is worth without code changes.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_COSTS = {
    "factual_error": 50.0,
    "reasoning_flaw": 30.0,
    "style": 2.0,
    "alignment_safety": 500.0,
    "pii": 1000.0,
    "policy_violation": 750.0,
    "other": 10.0,
}


class FeedbackConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HITL_FEEDBACK_", extra="ignore", frozen=True)

    costs: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_COSTS),
        description="Value of one caught issue per taxonomy label (currency units)",
    )
    unlabeled_cost: float = Field(default=10.0, ge=0, description="Value of an unlabeled catch")
    window_s: float = Field(default=86400.0, gt=0, description="Learning-curve window width")
    session_gap_s: float = Field(
        default=1800.0, gt=0, description="A pause this long ends a reviewer's session"
    )
    outlier_z: float = Field(default=2.0, gt=0, description="|z| above which a reviewer is flagged")
    outlier_min_decisions: int = Field(default=10, ge=1, description="Decisions before flagging")
    escape_budget: float = Field(
        default=0.02,
        gt=0,
        lt=1,
        description="Tolerated share of items that are errors and go unreviewed",
    )
    credibility: float = Field(
        default=0.95, gt=0.5, lt=1, description="Posterior quantile used as the error-rate bound"
    )
    window: int = Field(
        default=500, ge=10, description="Latest settled outcomes per segment the estimate uses"
    )
    update_every: int = Field(default=10, ge=1, description="Decisions per segment per update")
