"""Small builders shared by the prescreen tests."""

from __future__ import annotations

from typing import Any

from hitl_prescreen.detectors.base import EMPTY_CONTEXT, Detector, ScreenContext
from hitl_shared.events import Flag, LLMOutput
from tests.factories import llm_output


def output(text: str, **overrides: Any) -> LLMOutput:
    return llm_output("t-1", output_text=text, **overrides)


def run(
    detector: Detector, text: str, state: ScreenContext = EMPTY_CONTEXT, **kw: Any
) -> list[Flag]:
    """Flags of one detector on ``text``; ``kw`` are fields of the output event."""
    return detector.detect(output(text, **kw), state)


def spans(detector: Detector, text: str, **kw: Any) -> list[tuple[str, str]]:
    """(category, covered text) of every flag, in order."""
    return [(f.category, text[f.start : f.end]) for f in run(detector, text, **kw)]
