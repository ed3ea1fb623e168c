"""Every log line written while an item is handled names the item and its trace."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from hitl_shared.runtime import JsonFormatter
from hitl_shared.telemetry import continue_trace, item_span, trace_context_now

pytestmark = pytest.mark.unit


def _line(message: str) -> dict[str, str]:
    record = logging.LogRecord("hitl.test", logging.INFO, __file__, 1, message, None, None)
    return json.loads(JsonFormatter().format(record))


def test_log_lines_inside_an_item_span_carry_trace_and_item_ids():
    tracer = TracerProvider().get_tracer("test")
    with item_span(tracer, "t process", parent=None, item_id="item-7", topic="t") as span:
        line = _line("handling")
    assert line["item_id"] == "item-7"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["msg"] == "handling" and line["level"] == "INFO"


def test_log_lines_outside_any_item_have_no_item_id():
    assert "item_id" not in _line("idle") and "trace_id" not in _line("idle")


def test_a_continued_trace_logs_the_items_trace_not_the_requests():
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("routing") as routing:
        stored = trace_context_now()
    with (
        tracer.start_as_current_span("http request"),
        continue_trace("review decision", stored, item_id="item-9", tracer=tracer) as span,
    ):
        line = _line("decided")
    item_trace = format(routing.get_span_context().trace_id, "032x")
    assert line["trace_id"] == item_trace and line["item_id"] == "item-9"
    assert span.parent is not None and span.parent.span_id == routing.get_span_context().span_id
    assert len(span.links) == 1  # the reviewer's request span
