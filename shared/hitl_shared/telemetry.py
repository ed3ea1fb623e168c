"""Tracing setup and W3C trace-context propagation through Kafka headers and Redis.

FastStream's ``KafkaTelemetryMiddleware`` injects context on publish. Batch consumers
start one span per record themselves (``item_span``), parented on the context the
record carries, so every item keeps a single trace across services. A review task
waits in Redis, not Kafka: it carries the routing span's context (``trace_context_now``)
and the review API continues the item's trace from it (``continue_trace``), linking the
reviewer's HTTP request span. See docs/adr/0008-tracing-across-kafka.md.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import IO, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.util.types import AttributeValue

from hitl_shared.settings import Settings

ATTR_ITEM_ID = "hitl.item_id"
ATTR_TIER = "hitl.tier"
ATTR_ACTION = "hitl.action"
ATTR_REVIEWER_LEVEL = "hitl.reviewer_level"
ATTR_APP = "hitl.app"
ATTR_TASK_ID = "hitl.task_id"

CURRENT_ITEM_ID: ContextVar[str | None] = ContextVar("hitl_item_id", default=None)
"""The item being handled; every log line written meanwhile carries it."""

_file_handles: list[IO[str]] = []
_built: list[TracerProvider] = []


def _text_value(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def span_json_line(span: ReadableSpan) -> str:
    """One span as one JSON line. Bytes attributes (FastStream records the Kafka key as
    bytes) become text: ``to_json`` would raise and the exporter drop the whole batch."""
    attributes = span.attributes or {}
    if any(isinstance(v, bytes) for v in attributes.values()):
        span = ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes={k: _text_value(v) for k, v in attributes.items()},
            events=span.events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )
    line: str = span.to_json(indent=None)
    return line + "\n"


def _exporter(settings: Settings) -> SpanExporter | None:
    if settings.otel_exporter == "console":
        return ConsoleSpanExporter(formatter=span_json_line)
    if settings.otel_exporter == "file":
        handle = open(settings.otel_file, "a", encoding="utf-8")  # noqa: SIM115 - lives for the process
        _file_handles.append(handle)
        return ConsoleSpanExporter(out=handle, formatter=span_json_line)
    if settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=f"{settings.otel_endpoint.rstrip('/')}/v1/traces")
    return None


def build_tracer_provider(
    settings: Settings, *, exporter: SpanExporter | None = None
) -> TracerProvider:
    """A provider for one service; ``exporter`` overrides settings (tests pass in-memory)."""
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    chosen = exporter or _exporter(settings)
    if chosen is not None:
        processor = (
            SimpleSpanProcessor(chosen) if exporter is not None else BatchSpanProcessor(chosen)
        )
        provider.add_span_processor(processor)
    atexit.register(provider.shutdown)
    _built[:] = [provider]  # the one the review API's HTTP spans resolve to
    return provider


def headers_carrier(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """Kafka record headers as the str->str carrier OpenTelemetry propagators read."""
    carrier: dict[str, str] = {}
    for key, value in headers or ():
        try:
            carrier[key] = value.decode() if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            continue
    return carrier


def context_from_headers(headers: Iterable[tuple[str, bytes]] | None) -> Context:
    return extract(headers_carrier(headers))


def current_trace_headers() -> dict[str, str]:
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


def trace_context_now() -> dict[str, str]:
    """The current span's W3C context, to store with state that waits outside Kafka."""
    return current_trace_headers()


@contextmanager
def item_scope(item_id: str | None) -> Iterator[None]:
    """Log lines written inside carry ``item_id``."""
    token = CURRENT_ITEM_ID.set(item_id)
    try:
        yield
    finally:
        CURRENT_ITEM_ID.reset(token)


@contextmanager
def item_span(
    tracer: trace.Tracer,
    name: str,
    *,
    parent: Context | None,
    item_id: str | None,
    topic: str,
    kind: SpanKind = SpanKind.CONSUMER,
    group: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> Iterator[Span]:
    """One consumed record's span (messaging semconv), current item id set for logs."""
    attributes = consumer_attributes(topic, group, partition, offset, item_id)
    with (
        item_scope(item_id),
        tracer.start_as_current_span(
            name, context=parent, kind=kind, attributes=attributes
        ) as span,
    ):
        yield span


def consumer_attributes(
    topic: str,
    group: str | None,
    partition: int | None,
    offset: int | None,
    item_id: str | None,
) -> dict[str, AttributeValue]:
    """The messaging semconv attributes of one consumed record's processing span."""
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
    }
    if group:
        attributes["messaging.consumer.group.name"] = group
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    if offset is not None:
        attributes["messaging.kafka.offset"] = offset
    if item_id:
        attributes[ATTR_ITEM_ID] = item_id
    return attributes


@contextmanager
def continue_trace(
    name: str,
    carrier: Mapping[str, str] | None,
    *,
    item_id: str,
    attributes: Mapping[str, AttributeValue] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    tracer: trace.Tracer | None = None,
) -> Iterator[Span]:
    """A span in the item's trace, started where the item's context arrives out of band.

    ``carrier`` is what ``trace_context_now`` stored with the item (e.g. on the review
    task). The span is a child of that context and links the span current here (the
    reviewer's HTTP request), so both traces lead to each other. Without a carrier it
    is simply a child of the current span. Publishing inside nests under it, so the
    item's trace goes on downstream. ``tracer`` defaults to the process's provider.
    """
    tracer = tracer or _DeferredTracerProvider().get_tracer("hitl")
    here = trace.get_current_span().get_span_context()
    parent = extract(dict(carrier)) if carrier else None
    links: Sequence[Link] = ()
    if parent is not None and here.is_valid:
        links = (Link(here, {"hitl.link": "request"}),)
    merged: dict[str, AttributeValue] = {ATTR_ITEM_ID: item_id, **(attributes or {})}
    with (
        item_scope(item_id),
        tracer.start_as_current_span(
            name, context=parent, kind=kind, attributes=merged, links=links
        ) as span,
    ):
        yield span


def record_wait(
    name: str,
    carrier: Mapping[str, str] | None,
    *,
    item_id: str,
    since: datetime,
    attributes: Mapping[str, AttributeValue] | None = None,
    tracer: trace.Tracer | None = None,
) -> None:
    """A span in the item's trace covering time spent waiting (e.g. queued for review),
    from ``since`` (the task's ``occurred_at``) to now."""
    tracer = tracer or _DeferredTracerProvider().get_tracer("hitl")
    parent = extract(dict(carrier)) if carrier else None
    merged: dict[str, AttributeValue] = {ATTR_ITEM_ID: item_id, **(attributes or {})}
    span = tracer.start_span(
        name, context=parent, attributes=merged, start_time=int(since.timestamp() * 1e9)
    )
    span.end()


class _DeferredTracer(trace.Tracer):
    """Resolves the provider on every span: the review API builds it in its lifespan,
    after the app and its middleware exist."""

    def __init__(self, name: str, version: str | None, schema_url: str | None) -> None:
        self._args = (name, version, schema_url)

    def _real(self) -> trace.Tracer:
        provider: trace.TracerProvider = _built[-1] if _built else trace.get_tracer_provider()
        name, version, schema_url = self._args
        return provider.get_tracer(name, version, schema_url)

    def start_span(self, *args: Any, **kwargs: Any) -> Span:
        return self._real().start_span(*args, **kwargs)

    @contextmanager  # same call shape as the API's ProxyTracer
    def start_as_current_span(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> Iterator[Span]:
        with self._real().start_as_current_span(*args, **kwargs) as span:
            yield span


class _DeferredTracerProvider(trace.TracerProvider):
    """The provider this process built last (one per service process)."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        return _DeferredTracer(instrumenting_module_name, instrumenting_library_version, schema_url)


def instrument_http(app: Any) -> None:
    """HTTP server spans (semconv) for a FastAPI app; health probes are not traced.

    Without opentelemetry-instrumentation-fastapi installed the app runs untraced at
    the HTTP layer (the item's spans are unaffected) and says so once.
    """
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:
        logging.getLogger("hitl.telemetry").warning(
            "opentelemetry-instrumentation-fastapi not installed: no HTTP server spans"
        )
        return

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_DeferredTracerProvider(),
        excluded_urls="healthz,readyz,livez",
        exclude_spans=["receive", "send"],
    )
