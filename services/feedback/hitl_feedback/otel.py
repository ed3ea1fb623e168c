"""OpenTelemetry metrics of the feedback loop: the counters SREs and ML owners watch.

Instruments come from ``opentelemetry.metrics.get_meter``; the process's meter provider
(set by ``configure_metrics`` in the service, by the test otherwise) decides the export.
"""

from __future__ import annotations

from opentelemetry import metrics
from opentelemetry.metrics import Meter

from hitl_feedback.annotations import Annotation
from hitl_shared.events import PolicyUpdate, UserFeedback
from hitl_shared.settings import Settings


class FeedbackInstruments:
    def __init__(self, meter: Meter | None = None) -> None:
        meter = meter or metrics.get_meter("hitl.feedback")
        self.decisions = meter.create_counter(
            "hitl.feedback.decisions", unit="{decision}", description="Review decisions seen"
        )
        self.errors_caught = meter.create_counter(
            "hitl.feedback.errors_caught", unit="{item}", description="Settled edits and rejects"
        )
        self.value_caught = meter.create_counter(
            "hitl.feedback.value_caught", unit="1", description="Configured cost of caught errors"
        )
        self.review_time = meter.create_histogram(
            "hitl.feedback.review_time", unit="s", description="Reviewer time per decision"
        )
        self.review_rate = meter.create_gauge(
            "hitl.feedback.review_rate", unit="1", description="Latest review rate per segment"
        )
        self.user_feedback = meter.create_counter(
            "hitl.feedback.user_feedback", unit="{event}", description="App user feedback events"
        )

    def record_decision(self, annotation: Annotation, value: float) -> None:
        attrs = {
            "app": annotation.app,
            "use_case": annotation.use_case,
            "tier": annotation.tier or "unknown",
            "verdict": annotation.verdict,
            "prompt_version": annotation.prompt_template_version,
            "model": annotation.model,
        }
        self.decisions.add(1, attrs)
        self.review_time.record(annotation.time_spent_s, attrs)
        if annotation.is_outcome and annotation.is_error:
            self.errors_caught.add(1, attrs)
            self.value_caught.add(value, attrs)

    def record_policy(self, update: PolicyUpdate) -> None:
        self.review_rate.set(
            update.review_rate,
            {"app": update.app, "use_case": update.use_case, "tier": update.tier},
        )

    def record_user_feedback(self, feedback: UserFeedback) -> None:
        self.user_feedback.add(
            1, {"app": feedback.app, "kind": feedback.kind, "signal": feedback.signal or "none"}
        )


def configure_metrics(settings: Settings) -> None:
    """Install a meter provider matching the trace exporter setting (none: no export)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        MetricExporter,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.resources import Resource

    exporter: MetricExporter | None = None
    if settings.otel_exporter == "console":
        exporter = ConsoleMetricExporter()
    elif settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=f"{settings.otel_endpoint.rstrip('/')}/v1/metrics")
    if exporter is None:
        return
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=15_000)
    resource = Resource.create({"service.name": settings.service_name})
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
