"""Unsupported claims against context, and low confidence."""

from __future__ import annotations

import pytest

from hitl_prescreen.detectors.claims import ClaimsDetector
from hitl_prescreen.detectors.confidence import ConfidenceDetector
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
