"""Property: whatever text surrounds a value, its flag covers exactly that value."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hitl_prescreen.config import load_config
from hitl_prescreen.domain import screen
from tests.prescreen.helpers import output

pytestmark = pytest.mark.unit
DETECTORS = load_config().build()
VALUES = [
    ("payment_card", "4111 1111 1111 1111"),
    ("email", "jane.doe@example.com"),
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
    ("us_ssn", "536-22-1234"),
]
# Letters, marks, emoji and CJK, but no ASCII word characters that could join the value.
SURROUNDING = st.text(
    alphabet=st.one_of(
        st.sampled_from(" \n,;()!?\u3002\uff0c"),
        st.characters(min_codepoint=0x300, max_codepoint=0x36F),  # combining marks
        st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF),  # CJK
        st.characters(min_codepoint=0x1F600, max_codepoint=0x1F64F),  # emoji
        st.characters(min_codepoint=0xC0, max_codepoint=0x17F),  # accented Latin
        st.just("\u200d"),  # zero-width joiner
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=SURROUNDING, after=SURROUNDING, choice=st.sampled_from(VALUES))
def test_flag_span_is_the_value_on_any_unicode_surroundings(before, after, choice):
    category, value = choice
    text = f"{before} {value} {after}"
    result = screen(output(text), DETECTORS, budget_ms=60_000)  # no timing asserts
    spans = {(f.category, text[f.start : f.end]) for f in result.flags}
    assert (category, value) in spans
    for flag in result.flags:
        assert 0 <= flag.start <= flag.end <= len(text)
    assert result.detector_errors == ()
