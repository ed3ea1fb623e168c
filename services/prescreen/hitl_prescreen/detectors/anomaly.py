"""Statistical outliers against the app's own running baseline.

Features per output: length (log of characters), character entropy (bits per char),
share of letters outside the Latin script, share of digits. The baseline holds a
Welford mean and M2 per feature per app; it lives in Redis (see ``baseline_store``)
and this module only reads it. An item is flagged when a feature's z-score passes the
threshold, once the app has enough items for the baseline to mean something.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from hitl_prescreen.detectors.base import ScreenContext, make_flag
from hitl_shared.events import Flag, LLMOutput

FEATURES = ("log_length", "entropy", "non_latin_share", "digit_share")
_DESCRIPTIONS = {
    "log_length": "length",
    "entropy": "character entropy",
    "non_latin_share": "share of non-Latin letters (language/script mix)",
    "digit_share": "share of digits",
}


class AnomalyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    min_samples: int = Field(default=50, ge=2)
    z_threshold: float = Field(default=4.0, gt=0)
    min_std: dict[str, float] = Field(
        default_factory=lambda: {
            "log_length": 0.25,
            "entropy": 0.15,
            "non_latin_share": 0.05,
            "digit_share": 0.02,
        },
        description="Floor of each feature's deviation, so a uniform app is not too touchy",
    )


@lru_cache(maxsize=64)  # computed for the detector, then again for the baseline update
def features(text: str) -> dict[str, float]:
    """The feature vector of one output text (treat the result as read-only)."""
    n = len(text)
    if n == 0:
        return dict.fromkeys(FEATURES, 0.0)
    counts = Counter(text)
    entropy = -sum((c / n) * math.log2(c / n) for c in counts.values())
    letters = non_latin = digits = 0
    for ch, c in counts.items():
        if ch.isalpha():
            letters += c
            if ord(ch) > 0x24F:
                non_latin += c
        elif ch.isdigit():
            digits += c
    return {
        "log_length": math.log1p(n),
        "entropy": entropy,
        "non_latin_share": non_latin / letters if letters else 0.0,
        "digit_share": digits / n,
    }


@dataclass
class Baseline:
    """Welford accumulators for one app: count, and mean / M2 per feature."""

    count: int = 0
    mean: dict[str, float] = field(default_factory=dict)
    m2: dict[str, float] = field(default_factory=dict)

    def std(self, name: str) -> float:
        if self.count < 2:
            return 0.0
        return math.sqrt(self.m2.get(name, 0.0) / (self.count - 1))

    def add(self, values: dict[str, float]) -> None:
        """One Welford step (the Redis script does the same arithmetic)."""
        self.count += 1
        for name, x in values.items():
            mean = self.mean.get(name, 0.0)
            delta = x - mean
            mean += delta / self.count
            self.mean[name] = mean
            self.m2[name] = self.m2.get(name, 0.0) + delta * (x - mean)


class AnomalyDetector:
    name = "anomaly"

    def __init__(self, config: AnomalyConfig | None = None) -> None:
        self.config = config or AnomalyConfig()

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]:
        baseline = context.baseline
        if baseline is None or baseline.count < self.config.min_samples:
            return []
        values = features(output.output_text)
        flags = []
        for name, x in values.items():
            std = max(baseline.std(name), self.config.min_std.get(name, 1e-6))
            z = (x - baseline.mean.get(name, 0.0)) / std
            if abs(z) < self.config.z_threshold:
                continue
            direction = "above" if z > 0 else "below"
            flags.append(
                make_flag(
                    self.name,
                    f"outlier_{name}",
                    "low",
                    min(1.0, abs(z) / (2 * self.config.z_threshold)),
                    0,
                    len(output.output_text),
                    f"Unusual {_DESCRIPTIONS[name]} for {output.app}: z={z:+.1f} "
                    f"({direction} the app's baseline of {baseline.count} items)",
                )
            )
        return flags
