"""Unsupported claims against context, and low confidence."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hitl_prescreen.detectors.claims import _DATE, _NUMBER, ClaimsDetector, _dates, _Spans
from hitl_prescreen.detectors.confidence import (
    _HEDGE_HINTS,
    _NOT_PLAIN,
    HEDGES,
    ConfidenceDetector,
    _may_hedge,
)
from hitl_shared.events import ContextDocument
from tests.prescreen.helpers import run, spans

pytestmark = pytest.mark.unit
CLAIMS = ClaimsDetector()
DOCS = (
    ContextDocument(
        doc_id="fund",
        text="Harbor Clean Energy Fund (HCEF): ongoing charge 0.55% per year; minimum "
        "initial investment $500; holds around 1,500 companies. Launched March 3, 2019.",
    ),
)


def test_supported_facts_are_quiet():
    text = (
        "Harbor Clean Energy Fund has an ongoing charge of 0.55% a year, a minimum of $500, "
        "holds about 1500 companies and launched March 3, 2019."
    )
    assert spans(CLAIMS, text, context=DOCS) == []


def test_unsupported_numbers_dates_names_and_quotes_are_flagged():
    text = (
        "It returned 34% last year. The manager, Tomasz Nowak, said "
        '"this fund can never lose money" on June 12, 2024.'
    )
    assert spans(CLAIMS, text, context=DOCS) == [
        ("unsupported_number", "34%"),
        ("unsupported_entity", "Tomasz Nowak"),
        ("unsupported_quote", '"this fund can never lose money"'),
        ("unsupported_date", "June 12, 2024"),
    ]


def test_no_context_means_no_claims_check():
    assert run(CLAIMS, "It returned 34% under Tomasz Nowak.") == []


def test_low_confidence_and_logprobs():
    det = ConfidenceDetector()
    assert run(det, "fine", confidence=0.9) == []
    low = run(det, "maybe", confidence=0.2)
    assert [f.category for f in low] == ["low_confidence"] and low[0].score == pytest.approx(0.8)
    assert low[0].start == 0 and low[0].end == len("maybe")
    unsure = run(det, "hmm", confidence=None, token_logprobs=(-2.0, -1.5, -3.0))
    assert [f.category for f in unsure] == ["low_token_probability"]
    assert run(det, "sure", confidence=None, token_logprobs=(-0.01, -0.2)) == []


# --- fast paths against the plain implementations they replace ---------------------------

# Stand-ins that re.IGNORECASE or \s accept, and cases to vary
_SWAPS = {"i": "iI\u0130\u0131", "s": "sS\u017f", "k": "kK\u212a", "e": "eE\u00e9", "5": "5\u0665"}
_GAPS = [" ", " ", " ", "", "  ", "\n", "\t", "\x1c", " \n ", "\xa0", "\u2003", "\u3000"]


@st.composite
def near_phrase(draw: st.DrawFn, seeds: list[str]) -> str:
    """One of ``seeds`` with its spaces, cases and some letters varied, amid other text."""
    out = [draw(st.sampled_from(["", "Sure. ", "\U0001f60a ", "Well,", "x"]))]
    for ch in draw(st.sampled_from(seeds)):
        if ch == " ":
            out.append(draw(st.sampled_from(_GAPS)))
        elif draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from(_SWAPS.get(ch.lower(), ch.swapcase()))))
        else:
            out.append(ch)
    return "".join(out) + draw(st.sampled_from(["", ".", " but", "ly", "\u00e9"]))


_FIRST_NUMBER = re.compile(  # _NUMBER as first written, an alternation on the first char
    r"(?:[$€£¥](?<![\w.][$€£¥])\d|\d(?<![\w.$€£¥]\d))"
    r"[\d,]*(?:\.\d+)?(?:\s?%|\s?(?:k|m|bn)\b)?(?![\w])"
)
number_text = st.text(alphabet="0123456789$€£¥.,%kmbnx_ '\n\u0663\u00b2", max_size=60)
_DATE_BITS = [
    "March", "Mar", "Mar.", "Sept", "September", "May", "Jan", "Janet", "Dec", "5", "05", "12",
    "2024", "1999", "12th", "3rd", "st", ",", ".", "-", "2024-03-05", "2024-3-5", "-01-02",
    "x", "\u0663\u0664\u0665\u0666", " ", "  ", "\n", "\t", "\u2003",
]  # fmt: skip
_DATE_SEEDS = [
    "5 March 2024", "12th Sept, 1999", "March 5, 2024", "Mar. 5th 2024", "2024-03-05",
    "March 2024", "05 May 2024", "1st Jan 2020", "31 December. 2023", "3rd of May 2024",
]  # fmt: skip
date_text = st.one_of(
    st.lists(st.sampled_from(_DATE_BITS), max_size=25).map("".join),
    st.lists(near_phrase(_DATE_SEEDS), min_size=1, max_size=3).map(" ".join),
)


@settings(max_examples=500, deadline=None)
@given(number_text)
def test_number_regex_matches_like_the_alternation_it_replaces(text):
    assert [m.span() for m in _NUMBER.finditer(text)] == [
        m.span() for m in _FIRST_NUMBER.finditer(text)
    ]


@settings(max_examples=500, deadline=None)
@given(date_text)
def test_dates_are_found_where_scanning_every_character_finds_them(text):
    assert [m.span() for m in _dates(text)] == [m.span() for m in _DATE.finditer(text)]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" \t\"'“(*-.!?:\nAb", max_size=12), st.data())
def test_sentence_start_walks_back_like_rstrip(text, data):
    start = data.draw(st.integers(0, len(text)))
    before = text[:start].rstrip(" \t\"'“(*-")
    assert ClaimsDetector._sentence_start(text, start) == (not before or before[-1] in ".!?:\n")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 8)), max_size=30))
def test_spans_refuse_overlaps_like_a_check_against_every_span(candidates):
    spans_taken, kept = _Spans(), []
    for start, length in candidates:
        end = start + length
        if not any(start < b and a < end for a, b in kept):
            kept.append((start, end))
            assert spans_taken.claim(start, end)
        else:
            assert not spans_taken.claim(start, end)


def test_overlapping_candidates_keep_the_first_flagged():
    text = "On June 12, 2024 we paid $1,250 to Acme Widgets Corp and 3,000 to Acme."
    assert spans(CLAIMS, text, context=DOCS) == [
        ("unsupported_date", "June 12, 2024"),
        ("unsupported_number", "$1,250"),
        ("unsupported_entity", "Acme Widgets Corp"),
        ("unsupported_number", "3,000"),
        ("unsupported_entity", "Acme"),
    ]


_HEDGE_SEEDS = [
    "I might be wrong", "I could be wrongly", "I'm not sure", "I am not entirely certain",
    "Im not 100% confident", "I'am not fully sure", "I m not completely sure",
    "if I remember correctly", "If I remember right", "I couldn't confirm", "I could not verify",
    "I can't confirm", "I cannot verify", "please double-check this", "double check this",
    "I believe, but I", "I think but I", "don't quote me", "dont quote me",
    "to the best of my knowledge", "I may be mistaken", "Sure. I am sure", "not sure",
]  # fmt: skip
hedge_text = st.lists(near_phrase(_HEDGE_SEEDS), min_size=1, max_size=3).map(" ".join)


@settings(max_examples=1000, deadline=None)
@given(hedge_text)
@example("Sure. I'm not \u017fure.")  # long s is s to re.IGNORECASE; "Sure" a hint
@example("I thin\u212a, but I know")  # K (Kelvin) lower-cases to k
@example("\u0130 might be wrong")
@example("I'm not\u2003certain, sure")  # whitespace outside ASCII
@example("I'm not  \n sure")
def test_hedges_are_flagged_as_by_the_hint_check_and_regex_alone(text):
    hinted = any(hint in text.lower() for hint in _HEDGE_HINTS)
    expected = [m.span() for m in HEDGES.finditer(text)] if hinted else []
    assert [(f.start, f.end) for f in run(ConfidenceDetector(), text)] == expected
    if HEDGES.search(text):
        assert _may_hedge(text)


def test_plain_view_knows_every_character_that_could_hide_a_hedge():
    chars = "".join(chr(c) for c in range(128, 0x110000) if not 0xD800 <= c < 0xE000)
    risky = re.findall(r"[a-z0-9%'-]|\s", chars, re.IGNORECASE)
    assert set(risky) == _NOT_PLAIN
    assert all(chr(b).isspace() == bool(re.match(r"\s", chr(b))) for b in range(128))
