"""Metrics SREs watch: queue depth and age, routing latency, decisions, DLQ, lag."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from hitl_prescreen.app import wire as wire_prescreen
from hitl_shared.events import LLMOutput, RoutingDecision, ScreenedOutput
from hitl_shared.kafka import Outgoing
from hitl_shared.metrics import HopMetrics, LagSampler, QueueSampler, record_review_decision
from hitl_shared.queue import ReviewQueue, score_for
from hitl_shared.runtime import hops_of
from hitl_shared.settings import Settings
from tests.factories import llm_output
from tests.support import produce, read_until, running


def _meter() -> tuple[Any, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader]).get_meter("test"), reader


def _points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    return [
        point
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def _routing(item_id: str, tier: str = "high", action: str = "hold") -> RoutingDecision:
    return RoutingDecision(
        item_id=item_id,
        app="a",
        use_case="u",
        tier=tier,
        risk_score=0.5,
        mode="sequential",
        action=action,
        review_probability=1.0,
        sampled=True,
        policy_version="p1",
    )


@pytest.mark.unit
def test_routing_latency_runs_from_the_outputs_creation_to_the_decision():
    meter, reader = _meter()
    hop = HopMetrics("llm.screened", "hitl-router", meter=meter)
    written = datetime.now(UTC) - timedelta(seconds=2)
    output = LLMOutput(**{**llm_output("i-1").model_dump(), "occurred_at": written})
    screened = ScreenedOutput(item_id="i-1", output=output)
    hop.handled(screened, [Outgoing("routing.decisions", _routing("i-1"))])
    hop.batch(3)
    record_review_decision("approve", "high", "L2", meter=meter)
    latency = _points(reader, "hitl.routing.latency")
    assert len(latency) == 1 and 2.0 <= latency[0].sum < 30.0
    assert latency[0].attributes == {"hitl.tier": "high"}
    decisions = {
        tuple(sorted(p.attributes.items())): p.value for p in _points(reader, "hitl.decisions")
    }
    assert (
        decisions[
            (("hitl.action", "hold"), ("hitl.decision.kind", "routing"), ("hitl.tier", "high"))
        ]
        == 1
    )
    assert any(("hitl.decision.kind", "review") in key for key in decisions)
    assert _points(reader, "hitl.hop.batch.size")[0].sum == 3


@pytest.mark.integration
async def test_queue_depth_and_oldest_age_per_bucket_and_tier(redis, unique):
    queue = ReviewQueue(redis, f"m{unique}")
    now = datetime.now(UTC)
    for n, (tier, age_s) in enumerate((("critical", 30), ("critical", 5), ("low", 600))):
        created = now - timedelta(seconds=age_s)
        await queue.enqueue(
            f"t{n}",
            bucket="L1:general:en",
            score=score_for(tier, created + timedelta(hours=1)),
            payload=f'{{"occurred_at": "{created.isoformat()}"}}',
        )
    meter, reader = _meter()
    sampler = QueueSampler(redis, f"m{unique}", meter=meter)
    await sampler.sample()
    depth = {
        (p.attributes["hitl.queue.bucket"], p.attributes["hitl.tier"]): p.value
        for p in _points(reader, "hitl.queue.depth")
    }
    age = {p.attributes["hitl.tier"]: p.value for p in _points(reader, "hitl.queue.oldest_age")}
    assert depth[("L1:general:en", "critical")] == 2 and depth[("L1:general:en", "low")] == 1
    assert depth[("L1:general:en", "high")] == 0
    assert 29 <= age["critical"] < 60 and 599 <= age["low"] < 700 and age["medium"] == 0


@pytest.mark.integration
async def test_dead_letters_and_batch_sizes_are_counted_by_the_hop(settings: Settings, redis):
    meter, reader = _meter()
    async with running(settings, wire_prescreen, redis) as wired:
        hop = next(h for h in hops_of(wired) if h.topic == settings.topics.llm_outputs)
        hop.metrics = HopMetrics(hop.topic, hop.group_id, meter=meter)
        await produce(settings, settings.topics.llm_outputs, b"{not json", key=b"bad")
        await produce(
            settings, settings.topics.llm_outputs, llm_output("ok-1").to_bytes(), key=b"ok-1"
        )
        await read_until(
            settings,
            settings.topics.llm_screened,
            lambda rs: any(r["item_id"] == "ok-1" for r in rs),
        )
    dead = _points(reader, "hitl.dead_letters")
    assert sum(p.value for p in dead) == 1
    assert dead[0].attributes["messaging.destination.name"] == settings.topics.llm_outputs
    assert sum(p.sum for p in _points(reader, "hitl.hop.batch.size")) == 2


@pytest.mark.integration
async def test_consumer_lag_is_what_the_group_has_not_consumed_yet(settings: Settings):
    topic = settings.topics.llm_outputs
    await produce(settings, topic, *[b"{}"] * 10, key=b"same-partition")
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"lag-{settings.redis_prefix}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=4,
        fetch_max_wait_ms=20,
        session_timeout_ms=6000,
    )
    await consumer.start()
    try:
        got = 0
        async with asyncio.timeout(20):
            while got < 4:
                batch = await consumer.getmany(timeout_ms=200, max_records=4 - got)
                got += sum(len(v) for v in batch.values())
        meter, reader = _meter()
        sampler = LagSampler(lambda: [("lag-group", consumer)], meter=meter)
        await sampler.sample()
    finally:
        await consumer.stop()
    lag = _points(reader, "hitl.consumer.lag")
    assert sum(p.value for p in lag) == 6, [(p.attributes, p.value) for p in lag]
