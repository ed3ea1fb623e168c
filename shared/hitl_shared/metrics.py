"""Metrics through the OpenTelemetry SDK: what SREs watch besides traces.

Instruments come from the global meter provider (the API's proxies bind once a
service sets it), so the shared Kafka hop needs no wiring to count. Redis and Kafka
are async and observable-gauge callbacks are not: samplers poll on the event loop and
the gauges read their last snapshot.

Names: ``hitl.queue.depth`` / ``hitl.queue.oldest_age`` (per bucket and tier),
``hitl.routing.latency`` (LLM output written -> routing decision), ``hitl.decisions``
(routing actions, review verdicts, release outcomes), ``hitl.dead_letters``,
``hitl.hop.batch.size``, ``hitl.consumer.lag``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from redis.asyncio import Redis

from hitl_shared.settings import Settings
from hitl_shared.telemetry import ATTR_ACTION, ATTR_TIER

log = logging.getLogger("hitl.metrics")

METER_NAME = "hitl"
ATTR_KIND = "hitl.decision.kind"
ATTR_BUCKET = "hitl.queue.bucket"
TIER_CLASSES = {"critical": 0, "high": 1, "medium": 2, "low": 3}
TIER_WIDTH = 10**13  # the queue's score: tier class * width + SLA deadline in ms


def build_meter_provider(
    settings: Settings, *, readers: Sequence[MetricReader] | None = None
) -> MeterProvider:
    """A provider exporting as settings say; ``readers`` overrides (tests read in memory)."""
    chosen: list[MetricReader] = list(readers) if readers is not None else []
    interval_ms = settings.metrics_interval_s * 1000
    if readers is None and settings.metrics_exporter == "console":
        chosen.append(PeriodicExportingMetricReader(ConsoleMetricExporter(), interval_ms))
    elif readers is None and settings.metrics_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        endpoint = f"{settings.otel_endpoint.rstrip('/')}/v1/metrics"
        chosen.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint), interval_ms))
    resource = Resource.create({"service.name": settings.service_name})
    return MeterProvider(resource=resource, metric_readers=chosen)


def _meter() -> metrics.Meter:
    return metrics.get_meter(METER_NAME)


class HopMetrics:
    """What the batch hop counts: batch sizes, dead letters, decisions, routing latency."""

    def __init__(self, topic: str, group: str, *, meter: metrics.Meter | None = None) -> None:
        meter = meter or _meter()
        self.attrs = {"messaging.destination.name": topic, "messaging.consumer.group.name": group}
        self.batch_size = meter.create_histogram(
            "hitl.hop.batch.size", unit="{record}", description="Records per consumed batch"
        )
        self.dead_letters = meter.create_counter(
            "hitl.dead_letters", unit="{record}", description="Records sent to a dead-letter topic"
        )
        self.decisions = decisions_counter(meter)
        self.routing_latency = meter.create_histogram(
            "hitl.routing.latency",
            unit="s",
            description="LLM output written -> routing decision made",
        )

    def batch(self, size: int) -> None:
        self.batch_size.record(size, self.attrs)

    def dead_lettered(self, exc_class: str) -> None:
        self.dead_letters.add(1, {**self.attrs, "error.type": exc_class})

    def handled(self, event: Any, outputs: Iterable[Any]) -> None:
        """Count what a handled record led to (routing decisions, releases)."""
        for out in outputs:
            published = getattr(out, "event", out)
            kind = getattr(published, "event_type", "")
            if kind == "routing.decision":
                self._decision("routing", published.action, published.tier)
                origin = _origin_time(event)
                if origin is not None:
                    delay = time.time() - origin.timestamp()
                    self.routing_latency.record(max(0.0, delay), {ATTR_TIER: published.tier})
            elif kind == "llm.release":
                self._decision("release", published.outcome, None)
            elif kind == "llm.retraction":
                self._decision("release", "retracted", None)

    def _decision(self, kind: str, action: str, tier: str | None) -> None:
        attrs = {ATTR_KIND: kind, ATTR_ACTION: action}
        if tier:
            attrs[ATTR_TIER] = tier
        self.decisions.add(1, attrs)


def decisions_counter(meter: metrics.Meter | None = None) -> metrics.Counter:
    return (meter or _meter()).create_counter(
        "hitl.decisions", unit="{decision}", description="Decisions by kind, action and tier"
    )


def record_review_decision(
    verdict: str, tier: str | None, reviewer_level: str, *, meter: metrics.Meter | None = None
) -> None:
    """For the review API: one reviewer verdict."""
    attrs = {ATTR_KIND: "review", ATTR_ACTION: verdict, "hitl.reviewer_level": reviewer_level}
    if tier:
        attrs[ATTR_TIER] = tier
    decisions_counter(meter).add(1, attrs)


def _origin_time(event: Any) -> datetime | None:
    output = getattr(event, "output", None)
    stamp = getattr(output, "occurred_at", None)
    return stamp if isinstance(stamp, datetime) else None


class QueueSampler:
    """Polls queue depth and oldest task age per bucket and tier; gauges read the snapshot."""

    def __init__(self, redis: Redis, namespace: str, *, meter: metrics.Meter | None = None) -> None:
        self.redis = redis
        self.ns = "{" + namespace + "}"
        self.depth: dict[tuple[str, str], int] = {}
        self.oldest_age: dict[tuple[str, str], float] = {}
        meter = meter or _meter()
        meter.create_observable_gauge(
            "hitl.queue.depth",
            callbacks=[self._observe(self.depth)],
            unit="{task}",
            description="Queued (unclaimed) review tasks",
        )
        meter.create_observable_gauge(
            "hitl.queue.oldest_age",
            callbacks=[self._observe(self.oldest_age)],
            unit="s",
            description="Age of the oldest queued review task",
        )

    @staticmethod
    def _observe(
        snapshot: dict[tuple[str, str], Any],
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(value, {ATTR_BUCKET: bucket, ATTR_TIER: tier})
                for (bucket, tier), value in list(snapshot.items())
            ]

        return callback

    async def sample(self) -> None:
        """One read: per bucket and tier, count and the head (earliest deadline) task."""
        raw = await self.redis.smembers(f"{self.ns}:buckets")
        buckets = sorted(b.decode() if isinstance(b, bytes) else str(b) for b in raw)
        keys = [(b, t) for b in buckets for t in TIER_CLASSES]
        async with self.redis.pipeline(transaction=False) as pipe:
            for bucket, tier in keys:
                low = TIER_CLASSES[tier] * TIER_WIDTH
                pipe.zcount(f"{self.ns}:q:{bucket}", low, f"({low + TIER_WIDTH}")
                pipe.zrangebyscore(f"{self.ns}:q:{bucket}", low, f"({low + TIER_WIDTH}", 0, 1)
            replies = await pipe.execute()
        heads = {key: replies[2 * i + 1][0] for i, key in enumerate(keys) if replies[2 * i + 1]}
        async with self.redis.pipeline(transaction=False) as pipe:
            for task_id in heads.values():
                pipe.hget(f"{self.ns}:task:{_text(task_id)}", "payload")
            payloads = await pipe.execute()
        now = time.time()
        ages = {
            key: max(0.0, now - created)
            for key, payload in zip(heads, payloads, strict=True)
            if (created := _created(payload)) is not None
        }
        self.depth.clear()
        self.depth.update({key: int(replies[2 * i]) for i, key in enumerate(keys)})
        self.oldest_age.clear()
        self.oldest_age.update({key: ages.get(key, 0.0) for key in keys})


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _created(payload: Any) -> float | None:
    """When the task was created (its event's ``occurred_at``), from the stored payload."""
    if not payload:
        return None
    try:
        stamp = json.loads(payload).get("occurred_at")
        return datetime.fromisoformat(stamp).timestamp() if isinstance(stamp, str) else None
    except (ValueError, AttributeError):
        return None


class LagSampler:
    """Consumer lag per partition from the fetch high watermark the consumer itself saw.

    Not from ``end_offsets()``: on some brokers (Tansu) it returns the last batch's base
    offset, not the high watermark.
    """

    def __init__(
        self,
        consumers: Callable[[], Iterable[tuple[str, Any]]],
        *,
        meter: metrics.Meter | None = None,
    ) -> None:
        self.consumers = consumers
        self.lag: dict[tuple[str, str, int], int] = {}
        (meter or _meter()).create_observable_gauge(
            "hitl.consumer.lag",
            callbacks=[self._observe],
            unit="{record}",
            description="High watermark minus the consumer's position",
        )

    def _observe(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(
                lag,
                {
                    "messaging.consumer.group.name": group,
                    "messaging.destination.name": topic,
                    "messaging.destination.partition.id": str(partition),
                },
            )
            for (group, topic, partition), lag in list(self.lag.items())
        ]

    async def sample(self) -> None:
        fresh: dict[tuple[str, str, int], int] = {}
        for group, consumer in self.consumers():
            if consumer is None:
                continue
            for tp in consumer.assignment():
                high = consumer.highwater(tp)
                if high is None:
                    continue
                with contextlib.suppress(Exception):  # position unknown yet: skip this round
                    position = await asyncio.wait_for(consumer.position(tp), 1.0)
                    fresh[(group, tp.topic, tp.partition)] = max(0, int(high) - int(position))
        self.lag.clear()
        self.lag.update(fresh)


async def sample_forever(samplers: Sequence[Any], interval_s: float) -> None:
    """Run every sampler each period; a failed read is logged and retried next period."""
    while True:
        for sampler in samplers:
            try:
                await sampler.sample()
            except Exception as exc:  # Redis or Kafka briefly away: keep the last snapshot
                log.warning("metric sampling failed: %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(interval_s)
