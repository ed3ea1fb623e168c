"""Every event decoder either returns a valid event or raises a ValidationError naming why.

Hostile bytes (random, truncated JSON, deep nesting, huge numbers, odd unicode) must never
escape as another exception type: the batch hop dead-letters exactly ValidationError,
ValueError and RecursionError, so anything else would nack a batch forever.
"""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from hitl_shared.events import (
    LLMOutput,
    PolicyUpdate,
    ReviewDecision,
    ScreenedOutput,
    UserFeedback,
)
from tests.factories import llm_output

pytestmark = pytest.mark.unit

DECODERS = {
    model.__name__: TypeAdapter(model)
    for model in (LLMOutput, ScreenedOutput, ReviewDecision, UserFeedback, PolicyUpdate)
}
DEAD_LETTERED = (ValidationError, ValueError, RecursionError)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def _decode_or_dead_letter(name: str, raw: bytes) -> None:
    with contextlib.suppress(*DEAD_LETTERED):
        DECODERS[name].validate_json(raw)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(name=st.sampled_from(sorted(DECODERS)), raw=st.binary(max_size=400))
def test_random_bytes_never_escape_as_another_error(name, raw):
    _decode_or_dead_letter(name, raw)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(DECODERS)), value=json_values)
def test_arbitrary_json_never_escapes_as_another_error(name, value):
    _decode_or_dead_letter(name, json.dumps(value).encode())


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(min_value=0, max_value=400))
def test_truncated_valid_event_is_rejected_not_crashing(cut):
    raw = llm_output("trunc-1").to_bytes()
    if cut >= len(raw):
        return
    with pytest.raises(DEAD_LETTERED):
        DECODERS["LLMOutput"].validate_json(raw[:cut])


@settings(max_examples=80, deadline=None)
@given(
    text=st.text(max_size=300),
    confidence=st.floats(min_value=0, max_value=1),
    extra=st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda k: k.isidentifier()),
        st.integers(),
        max_size=3,
    ),
)
def test_valid_output_round_trips_and_unknown_fields_are_tolerated(text, confidence, extra):
    event = llm_output("rt-1", output_text=text, confidence=confidence)
    payload = json.loads(event.to_bytes())
    payload.update({f"future_{k}": v for k, v in extra.items()})
    decoded = DECODERS["LLMOutput"].validate_json(json.dumps(payload))
    assert decoded == event


def test_deep_nesting_and_huge_numbers_are_dead_lettered():
    for raw in (b"[" * 100_000, b'{"a":' * 50_000, b'{"item_id": 1' + b"0" * 5000 + b"}"):
        with pytest.raises(DEAD_LETTERED):
            DECODERS["LLMOutput"].validate_json(raw)


def test_missing_field_error_names_the_field():
    payload = json.loads(llm_output("named-1").to_bytes())
    del payload["output_text"]
    with pytest.raises(ValidationError) as caught:
        DECODERS["LLMOutput"].validate_json(json.dumps(payload))
    assert "output_text" in str(caught.value)


def test_newer_schema_version_is_rejected():
    payload = json.loads(llm_output("v2-1").to_bytes())
    payload["schema_version"] = 2
    with pytest.raises(ValidationError, match="schema_version"):
        DECODERS["LLMOutput"].validate_json(json.dumps(payload))
