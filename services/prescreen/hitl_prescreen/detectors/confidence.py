"""Low model confidence, from the app's own confidence or the token log-probabilities."""

from __future__ import annotations

import math

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
        return flags
