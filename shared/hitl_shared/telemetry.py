"""Tracing setup and W3C trace-context propagation through Kafka headers.

FastStream's ``KafkaTelemetryMiddleware`` injects context on publish. Batch consumers
start one span per record themselves (``item_span``), parented on the context the
record carries, so every item keeps a single trace across services.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind

from hitl_shared.settings import Settings

ATTR_ITEM_ID = "hitl.item_id"
ATTR_TIER = "hitl.tier"
ATTR_ACTION = "hitl.action"
ATTR_REVIEWER_LEVEL = "hitl.reviewer_level"
ATTR_APP = "hitl.app"

_file_handles: list[IO[str]] = []


def _exporter(settings: Settings) -> SpanExporter | None:
    if settings.otel_exporter == "console":
        return ConsoleSpanExporter()
    if settings.otel_exporter == "file":
        handle = open(settings.otel_file, "a", encoding="utf-8")  # noqa: SIM115 - lives for the process
        _file_handles.append(handle)
        return ConsoleSpanExporter(
            out=handle, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
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


@contextmanager
def item_span(
    tracer: trace.Tracer,
    name: str,
    *,
    parent: Context | None,
    item_id: str | None,
    topic: str,
    kind: SpanKind = SpanKind.CONSUMER,
) -> Iterator[Span]:
    attributes: dict[str, str] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.type": "process",
    }
    if item_id:
        attributes[ATTR_ITEM_ID] = item_id
    with tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=attributes
    ) as span:
        yield span
