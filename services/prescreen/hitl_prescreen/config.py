"""Which detectors run and how they are tuned: a YAML file validated by pydantic.

The default file ships in the package (``default_config.yaml``); a deployment points
``HITL_PRESCREEN_CONFIG`` at its own. Unknown keys are errors, so a typo in a threshold
name fails at start instead of being ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hitl_prescreen.detectors.anomaly import AnomalyConfig, AnomalyDetector
from hitl_prescreen.detectors.base import Detector
from hitl_prescreen.detectors.claims import ClaimsConfig, ClaimsDetector
from hitl_prescreen.detectors.confidence import ConfidenceConfig, ConfidenceDetector
from hitl_prescreen.detectors.edge_cases import EdgeCaseConfig, EdgeCaseDetector
from hitl_prescreen.detectors.injection import InjectionConfig, InjectionDetector
from hitl_prescreen.detectors.pii import PiiConfig, PiiDetector
from hitl_prescreen.detectors.secrets import SecretsConfig, SecretsDetector
from hitl_prescreen.detectors.toxicity import ToxicityConfig, ToxicityDetector


class PrescreenEnv(BaseSettings):
    """Prescreen-only environment: where its config file is, how many worker processes."""

    model_config = SettingsConfigDict(env_prefix="HITL_PRESCREEN_", extra="ignore")

    config: Path | None = None
    workers: int | None = Field(
        default=None,
        ge=0,
        description="Detector worker processes; 0 screens in the consumer process, unset "
        "means one per CPU this process may use (0 on a single CPU)",
    )

    def worker_count(self) -> int:
        if self.workers is not None:
            return self.workers
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return cpus if cpus and cpus > 1 else 0


class DetectorSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pii: PiiConfig = PiiConfig()
    secrets: SecretsConfig = SecretsConfig()
    toxicity: ToxicityConfig = ToxicityConfig()
    injection: InjectionConfig = InjectionConfig()
    claims: ClaimsConfig = ClaimsConfig()
    confidence: ConfidenceConfig = ConfidenceConfig()
    anomaly: AnomalyConfig = AnomalyConfig()
    edge_cases: EdgeCaseConfig = EdgeCaseConfig()


# Screening order: each detector's name is also its key in ``DetectorSet``.
DETECTOR_TYPES: tuple[tuple[str, Callable[[Any], Detector]], ...] = (
    ("pii", PiiDetector),
    ("secrets", SecretsDetector),
    ("toxicity", ToxicityDetector),
    ("injection", InjectionDetector),
    ("claims", ClaimsDetector),
    ("confidence", ConfidenceDetector),
    ("anomaly", AnomalyDetector),
    ("edge_cases", EdgeCaseDetector),
)


class PrescreenConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = "default"
    detector_budget_ms: float = Field(
        default=25.0, gt=0, description="A detector slower than this on one item is an error"
    )
    max_chars: int = Field(
        default=200_000, ge=1_000, description="Longer outputs are screened on this prefix"
    )
    redis_timeout_s: float = Field(
        default=0.5, gt=0, description="Loading baseline / knowledge base past this is an error"
    )
    worker_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A detector worker's chunk (or, on retry, one item) not back within this "
        "is given up: the workers are restarted and an item that never comes back is marked "
        "for review unscreened. Needs workers: inline screening cannot be interrupted",
    )
    detectors: DetectorSet = DetectorSet()

    def enabled(self) -> tuple[str, ...]:
        """Names of the enabled detectors, in screening order."""
        return tuple(name for name, _ in DETECTOR_TYPES if getattr(self.detectors, name).enabled)

    def build(self) -> dict[str, Detector]:
        """The enabled detectors (a disabled one is not even constructed), keyed by name."""
        enabled = self.enabled()
        return {
            name: kind(getattr(self.detectors, name))
            for name, kind in DETECTOR_TYPES
            if name in enabled
        }


def parse_config(text: str) -> PrescreenConfig:
    return PrescreenConfig.model_validate(yaml.safe_load(text) or {})


def load_config(path: Path | None = None) -> PrescreenConfig:
    """The config at ``path``, else at ``HITL_PRESCREEN_CONFIG``, else the packaged default."""
    path = path or PrescreenEnv().config
    if path is not None:
        return parse_config(Path(path).read_text(encoding="utf-8"))
    packaged = resources.files("hitl_prescreen").joinpath("default_config.yaml")
    return parse_config(packaged.read_text(encoding="utf-8"))
