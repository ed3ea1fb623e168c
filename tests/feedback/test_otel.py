"""The feedback counters are exported as OpenTelemetry metrics."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from hitl_feedback.annotations import annotate
from hitl_feedback.config import FeedbackConfig
from hitl_feedback.metrics import catch_value
from hitl_feedback.otel import FeedbackInstruments
from hitl_feedback.sampling import Evidence, policy_update
from tests.feedback.sample import decisions

pytestmark = pytest.mark.unit


def _points(reader: InMemoryMetricReader) -> dict[str, list]:
    found: dict[str, list] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = list(metric.data.data_points)
    return found


def test_decisions_value_and_rates_are_recorded():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instruments = FeedbackInstruments(provider.get_meter("test"))
    config = FeedbackConfig()
    for decision in decisions():
        annotation = annotate(decision)
        instruments.record_decision(annotation, catch_value(annotation, config))
    evidence = Evidence(reviewed=10, errors=1, window_items=10, window_errors=1)
    instruments.record_policy(policy_update("bot", "billing", "low", evidence, config))
    points = _points(reader)
    assert sum(p.value for p in points["hitl.feedback.decisions"]) == 13
    assert sum(p.value for p in points["hitl.feedback.errors_caught"]) == 5
    assert sum(p.value for p in points["hitl.feedback.value_caught"]) == pytest.approx(1882)
    assert sum(p.count for p in points["hitl.feedback.review_time"]) == 13
    (rate,) = points["hitl.feedback.review_rate"]
    assert rate.attributes["tier"] == "low" and 0.05 <= rate.value <= 1
