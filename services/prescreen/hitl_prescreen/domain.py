"""Pure screening: run every detector on one output and collect flags and scores.

One bad detector never stops an item: an exception or a detector slower than its
budget is recorded in ``detector_errors`` and turned into a flag that sends the item to
a human, and the other detectors' flags are kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hitl_prescreen.detectors.base import EMPTY_CONTEXT, Detector, ScreenContext, make_flag
from hitl_shared.events import Flag, LLMOutput, ScreenedOutput

LegacyDetector = Callable[[LLMOutput], Sequence[Flag]]
DEFAULT_BUDGET_MS = 25.0
DEFAULT_MAX_CHARS = 200_000
ERROR_DETECTOR = "prescreen"


def _default_detectors() -> dict[str, Detector]:
    from hitl_prescreen.config import load_config

    global _DEFAULTS
    if _DEFAULTS is None:
        _DEFAULTS = load_config().build()
    return _DEFAULTS


_DEFAULTS: dict[str, Detector] | None = None


def error_flag(name: str, reason: str, text_length: int) -> Flag:
    """The flag that marks an item for review because a detector could not judge it."""
    return make_flag(
        ERROR_DETECTOR,
        "detector_error",
        "high",
        1.0,
        0,
        text_length,
        f"Detector {name} could not check this item ({reason}); a human must review it",
    )


def _run(
    detector: Detector | LegacyDetector, output: LLMOutput, context: ScreenContext
) -> list[Flag]:
    detect = getattr(detector, "detect", None)
    if detect is not None:
        return list(detect(output, context))
    return list(detector(output))  # type: ignore[operator]


@dataclass(frozen=True)
class Verdict:
    """What screening found on one output: flags, per-detector max scores, failures."""

    flags: tuple[Flag, ...]
    scores: dict[str, float]
    errors: tuple[str, ...]

    def screened(self, output: LLMOutput) -> ScreenedOutput:
        return ScreenedOutput(
            item_id=output.item_id,
            output=output,
            flags=self.flags,
            scores=self.scores,
            detector_errors=self.errors,
        )


def judge(
    output: LLMOutput,
    detectors: Mapping[str, Detector | LegacyDetector] | None = None,
    *,
    context: ScreenContext = EMPTY_CONTEXT,
    budget_ms: float = DEFAULT_BUDGET_MS,
    timings: dict[str, float] | None = None,
    errors: Sequence[str] = (),
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Verdict:
    """All flags of all detectors, with per-detector max scores.

    ``errors`` are failures found before screening (e.g. the baseline could not be
    loaded); ``timings`` receives each detector's wall time in milliseconds. Text past
    ``max_chars`` is not scanned (bounded cost per item) and the item is marked for
    review; spans stay valid since the scanned text is a prefix.
    """
    flags: list[Flag] = []
    failed: list[str] = list(errors)
    if len(output.output_text) > max_chars:
        failed.append(
            f"prescreen: output of {len(output.output_text)} chars; only the first "
            f"{max_chars} were screened"
        )
        output = output.model_copy(update={"output_text": output.output_text[:max_chars]})
    length = len(output.output_text)
    for name, detector in (detectors if detectors is not None else _default_detectors()).items():
        started = time.perf_counter()
        try:
            found = _run(detector, output, context)
        except Exception as exc:  # one bad detector must not stop the item
            failed.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            continue
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            if timings is not None:
                timings[name] = elapsed
        for flag in found:
            if flag.end > length:
                flag = flag.model_copy(update={"end": length, "start": min(flag.start, length)})
            flags.append(flag)
        if elapsed > budget_ms:
            failed.append(f"{name}: exceeded its {budget_ms:g} ms budget ({elapsed:.1f} ms)")
    for reason in failed:
        flags.append(error_flag(reason.split(":", 1)[0], reason.split(":", 1)[-1].strip(), length))
    scores: dict[str, float] = {}
    for flag in flags:
        scores[flag.detector] = max(scores.get(flag.detector, 0.0), flag.score)
    return Verdict(tuple(flags), scores, tuple(failed))


def screen(
    output: LLMOutput,
    detectors: Mapping[str, Detector | LegacyDetector] | None = None,
    **options: Any,
) -> ScreenedOutput:
    """The screened output event for one output (``judge`` with the event around it)."""
    return judge(output, detectors, **options).screened(output)
