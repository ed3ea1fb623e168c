"""Trace context that waits outside Kafka (the review queue) brings the item back into
its own trace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hitl_shared.events import ReviewTask
from hitl_shared.telemetry import (
    ATTR_ITEM_ID,
    continue_trace,
    record_wait,
    trace_context_now,
)

pytestmark = pytest.mark.unit


def _tracer() -> tuple[Any, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def test_stored_context_is_a_w3c_traceparent_that_survives_json():
    tracer, _ = _tracer()
    with tracer.start_as_current_span("routing") as routing:
        stored = trace_context_now()
    trace_id = format(routing.get_span_context().trace_id, "032x")
    assert stored["traceparent"].split("-")[1] == trace_id
    if "trace_context" in ReviewTask.model_fields:  # the task carries it through Redis
        assert ReviewTask.model_fields["trace_context"].description


def test_without_stored_context_the_span_is_a_child_of_the_current_one():
    tracer, _ = _tracer()
    with (
        tracer.start_as_current_span("request") as request,
        continue_trace("review decision", {}, item_id="i", tracer=tracer) as span,
    ):
        pass
    assert span.parent is not None
    assert span.parent.span_id == request.get_span_context().span_id
    assert not span.links


def test_the_queue_wait_spans_from_task_creation_to_now_under_the_routing_span():
    tracer, exporter = _tracer()
    with tracer.start_as_current_span("routing") as routing:
        stored = trace_context_now()
    created = datetime.now(UTC) - timedelta(minutes=3)
    record_wait("review.tasks wait", stored, item_id="i-3", since=created, tracer=tracer)
    wait = next(s for s in exporter.get_finished_spans() if s.name == "review.tasks wait")
    assert wait.parent is not None and wait.parent.span_id == routing.get_span_context().span_id
    assert wait.start_time == int(created.timestamp() * 1e9)
    assert (wait.end_time - wait.start_time) / 1e9 >= 180
    assert wait.attributes[ATTR_ITEM_ID] == "i-3"
