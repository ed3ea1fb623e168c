"""submit(wait=True) against the real broker, Redis and services, for every outcome."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hitl_shared.client import HitlClient
from hitl_shared.client_sync import HitlClientSync
from tests.client.stack import auto_released, held_leak
from tests.factories import llm_output
from tests.support import by_item, read_until

pytestmark = pytest.mark.integration


async def test_auto_release_round_trip_continues_the_callers_trace(stack, stack_settings, unique):
    settings = stack_settings
    output = auto_released(llm_output, f"auto-{unique}")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with HitlClient(settings, tracer_provider=provider) as hitl:
        with provider.get_tracer("app").start_as_current_span("app request") as request:
            result = await hitl.submit(output, wait=True, timeout=30)
        again = await hitl.submit(output, wait=True, timeout=30)
        decisions = await read_until(
            settings, settings.topics.routing_decisions, by_item(output.item_id)
        )

    assert result.status == "auto_released" and result.released and not result.timed_out
    assert result.text == output.output_text
    assert result.release is not None and result.release.item_id == output.item_id
    assert again.release == result.release  # a resubmission is idempotent: one release
    trace_id = format(request.get_span_context().trace_id, "032x")
    assert result.trace_id == trace_id
    decision = next(d for d in decisions if d["item_id"] == output.item_id)
    assert decision["_headers"]["traceparent"].split("-")[1] == trace_id
    publishes = [
        s
        for s in exporter.get_finished_spans()
        if s.name == f"{settings.topics.llm_outputs} publish"
    ]
    assert len(publishes) == 2
    publish = publishes[0]  # the resubmission started its own trace: no span was current
    assert publish.parent is not None and publish.parent.span_id == request.context.span_id
    assert publishes[1].parent is None
    assert publish.attributes["hitl.outcome"] == "auto_released"


async def test_reviewed_outcomes_approved_edited_rejected(stack, stack_settings, unique):
    items = {verdict: held_leak(f"{verdict}-{unique}", llm_output) for verdict in ("a", "e", "r")}
    edited = "Your card ending in 1111 is on file."
    verdicts = {
        items["a"].item_id: {"verdict": "approve"},
        items["e"].item_id: {"verdict": "edit", "edited_text": edited, "reason": "pii"},
        items["r"].item_id: {"verdict": "reject", "reason": "card number", "labels": ["pii"]},
    }
    async with HitlClient(stack_settings) as hitl:
        waits = [
            asyncio.create_task(hitl.submit(item, wait=True, timeout=60)) for item in items.values()
        ]
        await stack.work(verdicts, done=lambda: all(w.done() for w in waits))
        approved, edited_result, rejected = [w.result() for w in waits]

    assert approved.status == "approved" and approved.text == items["a"].output_text
    assert edited_result.status == "edited" and edited_result.text == edited
    assert rejected.status == "rejected"
    assert rejected.text and rejected.text != items["r"].output_text  # the fallback
    assert rejected.release is not None and rejected.release.reason == "card number"


async def test_timeout_result_then_the_late_release(stack, stack_settings, unique):
    item = held_leak(f"slow-{unique}", llm_output)
    async with HitlClient(stack_settings) as hitl:
        result = await hitl.submit(item, wait=True, timeout=1.0)
        assert result.status == "timeout" and result.timed_out and not result.released
        assert result.text is None and result.text_or("Still checking...") == "Still checking..."
        assert result.waited_s >= 1.0

        late = asyncio.create_task(hitl.wait_for(item.item_id, timeout=60))
        await stack.work({item.item_id: {"verdict": "approve"}}, done=late.done)
        assert (await late).status == "approved"
        # the release is remembered: asking again answers at once
        assert (await hitl.wait_for(item.item_id, timeout=0.01)).status == "approved"


async def test_sync_client_round_trip(stack, stack_settings, unique):
    settings = stack_settings
    output = auto_released(llm_output, f"sync-{unique}")

    def app_thread() -> str:
        with HitlClientSync(settings, app="support-bot") as hitl:
            result = hitl.submit(output.model_dump(exclude={"app"}), wait=True, timeout=30)
            hitl.feedback(output.item_id, signal="copy")
            return result.status

    assert await asyncio.to_thread(app_thread) == "auto_released"
    feedback = await read_until(settings, settings.topics.user_feedback, by_item(output.item_id))
    assert feedback[0]["kind"] == "implicit" and feedback[0]["signal"] == "copy"
