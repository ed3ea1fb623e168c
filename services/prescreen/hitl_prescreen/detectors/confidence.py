"""Low model confidence, from the app's own confidence or the token log-probabilities."""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict, Field

from hitl_prescreen.detectors.base import ScreenContext, make_flag
from hitl_shared.events import Flag, LLMOutput


class ConfidenceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    mean_logprob_threshold: float = Field(
        default=-1.0, le=0.0, description="Mean token log-prob below this is low confidence"
    )
    hedges: bool = Field(default=True, description="Flag answers that say they are unsure")


# The model saying it is unsure, in words: a signal even when no score is supplied.
HEDGES = re.compile(
    r"(?=[iptd])\b(?:I\s+(?:might|may|could)\s+be\s+wrong|I'?\s*a?m\s+not\s+(?:entirely\s+|completely\s+|"
    r"fully\s+|100%\s+)?(?:sure|certain|confident)|I'?m\s+not\s+(?:entirely\s+)?sure|"
    r"if\s+I\s+remember\s+(?:correctly|right)|I\s+(?:couldn'?t|could\s+not|can'?t|cannot)\s+"
    r"(?:confirm|verify)|(?:please\s+)?double[- ]check\s+this|I\s+(?:believe|think),?\s+but\s+I|"
    r"don'?t\s+quote\s+me|to\s+the\s+best\s+of\s+my\s+knowledge|I\s+may\s+be\s+mistaken)",
    re.IGNORECASE,
)


_HEDGE_HINTS = (
    "wrong", "sure", "certain", "confident", "remember", "confirm", "verify", "double",
    "believe", "think", "quote", "knowledge", "mistaken",
)  # fmt: skip


class ConfidenceDetector:
    name = "confidence"

    def __init__(self, config: ConfidenceConfig | None = None) -> None:
        self.config = config or ConfidenceConfig()

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]:
        flags: list[Flag] = []
        end = len(output.output_text)
        if output.confidence is not None and output.confidence < self.config.threshold:
            flags.append(
                make_flag(
                    self.name,
                    "low_confidence",
                    "medium" if output.confidence >= self.config.threshold / 2 else "high",
                    1.0 - output.confidence,
                    0,
                    end,
                    f"Model confidence {output.confidence:.2f} below {self.config.threshold:.2f}",
                )
            )
        logprobs = output.token_logprobs
        if logprobs:
            finite = [lp for lp in logprobs if math.isfinite(lp)] or [-50.0]
            mean = sum(finite) / len(finite)
            if mean < self.config.mean_logprob_threshold:
                flags.append(
                    make_flag(
                        self.name,
                        "low_token_probability",
                        "medium",
                        1.0 - math.exp(mean),
                        0,
                        end,
                        f"Mean token log-probability {mean:.2f} below "
                        f"{self.config.mean_logprob_threshold:.2f}",
                    )
                )
        lowered = output.output_text.lower()
        if self.config.hedges and any(map(lowered.__contains__, _HEDGE_HINTS)):
            for m in HEDGES.finditer(output.output_text):
                flags.append(
                    make_flag(
                        self.name,
                        "hedged_answer",
                        "low",
                        0.6,
                        m.start(),
                        m.end(),
                        "The answer says it is unsure of itself",
                    )
                )
        return flags
