"""Small builders shared by the prescreen tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

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


# Letters written in look-alike ways (case, case-folding oddities, accents, other digits)
# and the gaps between words: what a detector's shortcuts must not be fooled by.
SWAPS = {"i": "iI\u0130\u0131", "s": "sS\u017f", "k": "kK\u212a", "e": "eE\u00e9", "5": "5\u0665"}
GAPS = [" ", " ", " ", "", "  ", "\n", "\t", "\x1c", " \n ", "\xa0", "\u2003", "\u3000"]


@st.composite
def near_phrase(draw: st.DrawFn, seeds: list[str]) -> str:
    """One of ``seeds`` with its spaces, cases and some letters varied, amid other text."""
    out = [draw(st.sampled_from(["", "Sure. ", "\U0001f60a ", "Well,", "\n", "x"]))]
    for ch in draw(st.sampled_from(seeds)):
        if ch == " ":
            out.append(draw(st.sampled_from(GAPS)))
        elif draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from(SWAPS.get(ch.lower(), ch.swapcase()))))
        else:
            out.append(ch)
    return "".join(out) + draw(st.sampled_from(["", ".", " but", "ly", "\u00e9"]))
