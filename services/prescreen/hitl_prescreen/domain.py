"""Pure screening logic: run each detector, collect flags, never let one failure stop an item."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from hitl_shared.events import Flag, LLMOutput, ScreenedOutput

Detector = Callable[[LLMOutput], Sequence[Flag]]

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def detect_pii(output: LLMOutput) -> list[Flag]:
    text = output.output_text
    flags = [
        Flag(
            detector="pii",
            category="email",
            severity="high",
            score=0.95,
            start=m.start(),
            end=m.end(),
            explanation="Email address in the output",
        )
        for m in _EMAIL.finditer(text)
    ]
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            flags.append(
                Flag(
                    detector="pii",
                    category="payment_card",
                    severity="critical",
                    score=0.97,
                    start=m.start(),
                    end=m.end(),
                    explanation="Payment card number (Luhn-valid)",
                )
            )
    return flags


def detect_low_confidence(output: LLMOutput, threshold: float = 0.5) -> list[Flag]:
    if output.confidence is None or output.confidence >= threshold:
        return []
    return [
        Flag(
            detector="confidence",
            category="low_confidence",
            severity="medium",
            score=round(1.0 - output.confidence, 4),
            start=0,
            end=0,
            explanation=f"Model confidence {output.confidence:.2f} below {threshold:.2f}",
        )
    ]


DEFAULT_DETECTORS: dict[str, Detector] = {
    "pii": detect_pii,
    "confidence": detect_low_confidence,
}


def screen(output: LLMOutput, detectors: dict[str, Detector] | None = None) -> ScreenedOutput:
    """All flags of all detectors; a detector that raises is recorded, not fatal."""
    flags: list[Flag] = []
    errors: list[str] = []
    for name, detector in (detectors or DEFAULT_DETECTORS).items():
        try:
            flags.extend(detector(output))
        except Exception as exc:  # one bad detector must not stop the item
            errors.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
    scores: dict[str, float] = {}
    for flag in flags:
        scores[flag.detector] = max(scores.get(flag.detector, 0.0), flag.score)
    return ScreenedOutput(
        item_id=output.item_id,
        output=output,
        flags=tuple(flags),
        scores=scores,
        detector_errors=tuple(errors),
    )
