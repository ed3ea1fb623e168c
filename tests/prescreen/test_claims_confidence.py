"""Unsupported claims against context, and low confidence."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hitl_prescreen.detectors.base import EMPTY_CONTEXT, make_flag
from hitl_prescreen.detectors.claims import (
    _CODE,
    _COMMON,
    _DATE,
    _ENTITY,
    _FIGURE_OR_NAME,
    _NUMBER,
    _QUOTE,
    ClaimsConfig,
    ClaimsDetector,
    _dates,
    _normalise,
    _Spans,
)
from hitl_prescreen.detectors.confidence import (
    _HEDGE_HINTS,
    _NOT_PLAIN,
    HEDGES,
    ConfidenceDetector,
    _may_hedge,
)
from hitl_shared.events import ContextDocument, Flag, LLMOutput
from tests.prescreen.helpers import near_phrase, output, run, spans

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


# Figures, names and the rest of what claims look at, to be joined at random.
_CLAIM_BITS = [
    "Harbor Clean Energy Fund", "Tomasz Nowak", "Acme Widgets Corp", "Acme", "The", "It",
    "Its", "Your", "Settings", "KeyError", "ACME", "IMPORTANT", "HCEF", "O'Brien",
    "Jean-Luc", "Bank of England", "Caf\u00e9", "Sure", "Hi Tomasz", "Nowak\u2019s",
    "$500", "$1,250", "0.55%", "1,500", "1500", "34%", "45 bn", "12k", "3 out of 7", "2019",
    "2024", "7", "\u20ac20", "\u00a35.5m", "\u0663\u0664", "v2.3", "x10", "1.", ",5",
    "March 3, 2019", "June 12, 2024", "2024-03-05", "5th March 2024", "Sept 2023",
    '"this fund can never lose money"', "\u201cwe guarantee a fixed return\u201d",
    '"x = f(y) for all"', '"Tomasz Nowak promised 12% a year"',
]  # fmt: skip
_CLAIM_GAPS = [
    " ", " ", ". ", ", ", "\t", "\n", " (", ") ", " *", "-", "'", " \U0001f60a ", "\u3000",
]  # fmt: skip
claim_text = st.lists(
    st.one_of(st.sampled_from(_CLAIM_BITS), st.sampled_from(_CLAIM_GAPS)), max_size=30
).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(claim_text, number_text))
def test_figures_and_names_in_one_scan_are_those_of_the_two_scans(text):
    both = [m.span() for m in _FIGURE_OR_NAME.finditer(text)]
    names = [span for span in both if "A" <= text[span[0]] <= "Z"]
    assert names == [m.span() for m in _ENTITY.finditer(text)]
    assert [span for span in both if span not in names] == [
        m.span() for m in _NUMBER.finditer(text)
    ]


def _plain_claims(detector: ClaimsDetector, item: LLMOutput) -> list[Flag]:
    """ClaimsDetector.detect as first written: every scan over the whole text, every
    figure and name judged afresh, every flag checked against all flagged before."""
    if not item.context:
        return []
    text = item.output_text
    corpus = _normalise(" ".join((*(d.text for d in item.context), item.prompt)))
    numbers = {
        n.group().lstrip("$€£¥").replace(",", "").rstrip("%").strip()
        for n in _FIRST_NUMBER.finditer(corpus)
    }
    flags: list[Flag] = []

    def add(start: int, end: int, category: str, score: float, why: str) -> None:
        if not any(start < f.end and f.start < end for f in flags):
            flags.append(make_flag("claims", category, "medium", score, start, end, why))

    for m in _QUOTE.finditer(text):
        quoted = m.group(1)
        if len(quoted.split()) < 3 or _CODE.search(quoted):
            continue
        if _normalise(quoted) not in corpus:
            add(m.start(), m.end(), "unsupported_quote", 0.7, "Quoted statement not in context")
    for m in _DATE.finditer(text):
        if _normalise(m.group()) not in corpus:
            add(m.start(), m.end(), "unsupported_date", 0.65, f"Date '{m.group()}' not in context")
    for m in _FIRST_NUMBER.finditer(text):
        raw = m.group()
        value = raw.lstrip("$€£¥").replace(",", "").rstrip("%kmbn ").strip()
        if value in numbers:
            continue
        try:
            magnitude = float(value)
        except ValueError:
            continue
        plain = raw == value and "." not in raw
        if plain and magnitude < detector.config.min_number:
            continue
        if plain and 1900 <= magnitude <= 2100 and _normalise(raw) in corpus:
            continue
        add(m.start(), m.end(), "unsupported_number", 0.6, f"Figure '{raw}' not in context")
    if detector.config.entities and item.language.lower().startswith("en"):
        for m in _ENTITY.finditer(text):
            name = m.group()
            if name in _COMMON:
                continue
            if text[m.end() : m.end() + 1] in ("'", "\u2019"):
                continue
            words = name.split()
            while words and words[0] in _COMMON:
                words.pop(0)
            if not words:
                continue
            entity = " ".join(words)
            start = m.end() - len(entity) if name.endswith(entity) else m.start()
            if len(words) == 1 and (
                len(entity) < 3
                or entity.lower() in detector.vocabulary
                or ClaimsDetector._sentence_start(text, start)
            ):
                continue
            if _normalise(entity) not in corpus:
                why = f"Name '{entity[:60]}' not in context"
                add(start, start + len(entity), "unsupported_entity", 0.5, why)
    return sorted(flags, key=lambda f: f.start)


# Kept across examples, as in the service: each remembers verdicts on many documents.
DETECTORS = [
    ClaimsDetector(config, vocabulary=CLAIMS.vocabulary)
    for config in (ClaimsConfig(), ClaimsConfig(min_number=0), ClaimsConfig(entities=False))
]


@settings(max_examples=500, deadline=None)
@given(
    text=claim_text,
    documents=st.lists(claim_text, min_size=1, max_size=2),
    prompt=claim_text,
    detector=st.sampled_from(DETECTORS),
    language=st.sampled_from(["en", "en-GB", "de"]),
)
def test_claims_are_those_of_the_plain_detector(text, documents, prompt, detector, language):
    context = tuple(ContextDocument(doc_id=f"d{n}", text=d) for n, d in enumerate(documents))
    item = output(text, context=context, prompt=prompt, language=language)
    expected = _plain_claims(detector, item)
    assert detector.detect(item, EMPTY_CONTEXT) == expected
    assert detector.detect(item, EMPTY_CONTEXT) == expected  # from remembered verdicts


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
