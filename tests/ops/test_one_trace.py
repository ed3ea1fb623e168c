"""One item, one trace: the app's publish, prescreen, router, the reviewer's claim and
decision over HTTP, the release and the feedback processing form one tree."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr

from hitl_shared import telemetry
from hitl_shared.kafka import build_broker
from hitl_shared.settings import Settings
from hitl_shared.telemetry import ATTR_ITEM_ID, ATTR_REVIEWER_LEVEL
from tests.factories import llm_output
from tests.support import by_item, read_until, running

pytestmark = pytest.mark.integration
ADMIN = "admin-secret-token-ops"


async def _decide_until_released(
    client: httpx.AsyncClient, settings: Settings, tokens: dict[str, dict[str, str]], item: str
) -> None:
    """Reviewers take turns until the item is released (critical items need two)."""
    for _ in range(4):
        for headers in tokens.values():
            claimed = await client.post("/api/tasks/claim", headers=headers)
            if claimed.status_code != 200:
                continue
            task = claimed.json()
            decided = await client.post(
                f"/api/tasks/{task['task_id']}/decision",
                headers=headers,
                json={"fence": task["fence"], "verdict": "approve"},
            )
            assert decided.status_code == 200, decided.text
        try:
            await read_until(settings, settings.topics.llm_released, by_item(item), timeout=3)
            return
        except AssertionError:
            continue
    raise AssertionError(f"{item} was never released")


async def _spans_settle(exporter: InMemorySpanExporter, scope: str, topic: str) -> None:
    """Wait until the feedback service has processed the decision."""
    async with asyncio.timeout(30):
        while not any(  # noqa: ASYNC110 - finished spans are no event source
            s.instrumentation_scope and s.instrumentation_scope.name == scope and topic in s.name
            for s in exporter.get_finished_spans()
        ):
            await asyncio.sleep(0.1)


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def _one(spans: Sequence[ReadableSpan], what: str, test: Any) -> ReadableSpan:
    found = [s for s in spans if test(s)]
    assert found, f"no {what} span among {[s.name for s in spans]}"
    return min(found, key=lambda s: s.start_time or 0)


async def test_one_items_spans_from_every_service_form_one_ordered_tree(
    settings: Settings, redis, unique, monkeypatch
):
    from hitl_feedback.app import wire as wire_feedback
    from hitl_prescreen.app import wire as wire_prescreen
    from hitl_review_api.app import create_app
    from hitl_router.app import wire as wire_router

    exporter = InMemorySpanExporter()
    monkeypatch.setattr(telemetry, "_exporter", lambda _settings: exporter)
    item = f"trace-{unique}"
    leaked = llm_output(
        item, output_text="Your card 4111 1111 1111 1111 is on file.", user_vulnerability="high"
    )
    app_settings = settings.model_copy(
        update={"admin_token": SecretStr(ADMIN), "service_name": "review-api"}
    )
    app = create_app(app_settings)
    client_provider = TracerProvider()
    client_provider.add_span_processor(SimpleSpanProcessor(exporter))

    async with AsyncExitStack() as stack:
        for wire in (wire_prescreen, wire_router, wire_feedback):
            await stack.enter_async_context(running(settings, wire, redis, exporter=exporter))
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        )
        publisher = build_broker(settings, client_provider)
        await publisher.start()
        stack.push_async_callback(publisher.stop)
        tracer = client_provider.get_tracer("demo-app")
        with tracer.start_as_current_span("demo-app answer", kind=SpanKind.SERVER):
            await publisher.publish(
                leaked.to_bytes(), settings.topics.llm_outputs, key=item.encode()
            )
        await read_until(settings, settings.topics.review_tasks, by_item(item))
        tokens = {}
        for name, level in (("alice", "L2"), ("bob", "L3")):
            made = await client.post(
                "/api/reviewers",
                headers={"Authorization": f"Bearer {ADMIN}"},
                json={"reviewer_id": f"{name}-{unique}", "level": level},
            )
            assert made.status_code == 201, made.text
            tokens[name] = {"Authorization": f"Bearer {made.json()['token']}"}
        await _decide_until_released(client, settings, tokens, item)
        await _spans_settle(exporter, "hitl.feedback", settings.topics.review_decisions)
    spans = exporter.get_finished_spans()  # the review API's batch processor flushed on exit

    root = _one(spans, "app", lambda s: s.name == "demo-app answer")
    trace_id = root.context.trace_id
    http = [s for s in spans if s.kind == SpanKind.SERVER and s is not root]
    of_item = [
        s
        for s in spans
        if s.attributes and s.attributes.get(ATTR_ITEM_ID) == item and s not in http
    ]
    assert {s.context.trace_id for s in of_item} == {trace_id}, _listing(of_item)

    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    by_id = {s.context.span_id: s for s in in_trace}
    assert [s for s in in_trace if s.parent is None] == [root], "more than one root"
    for span in in_trace:
        if span is not root:
            assert span.parent is not None and span.parent.span_id in by_id, span.name
            assert by_id[span.parent.span_id].start_time <= span.start_time, span.name

    def scoped(scope: str, topic: str):
        return lambda s: (
            s.instrumentation_scope is not None
            and s.instrumentation_scope.name == scope
            and s.name == f"{topic} process"
        )

    topics = settings.topics
    prescreen = _one(in_trace, "prescreen", scoped("hitl.prescreen", topics.llm_outputs))
    routing = _one(in_trace, "router", scoped("hitl.router", topics.llm_screened))
    reviews = [
        s
        for s in in_trace
        if s.name == "review decision" and ATTR_REVIEWER_LEVEL in (s.attributes or {})
    ]
    assert reviews, _listing(in_trace)
    released_publish = {f"{topics.llm_released} publish"}
    release = _one(
        in_trace,
        "router release",
        lambda s: (
            scoped("hitl.router", topics.review_decisions)(s)
            and any(s in _ancestors(c, by_id) for c in in_trace if c.name in released_publish)
        ),
    )
    feedback = _one(in_trace, "feedback", scoped("hitl.feedback", topics.review_decisions))

    assert root in _ancestors(prescreen, by_id)
    assert prescreen in _ancestors(routing, by_id)
    assert all(routing in _ancestors(review, by_id) for review in reviews)
    final = next(r for r in reviews if r in _ancestors(release, by_id))
    assert final in _ancestors(feedback, by_id) or any(
        r in _ancestors(feedback, by_id) for r in reviews
    )
    waits = [s for s in in_trace if s.name == "review.tasks wait"]
    assert waits and all(w.parent and w.parent.span_id == routing.context.span_id for w in waits)
    assert routing.attributes and routing.attributes.get("hitl.tier") == "critical"
    assert prescreen.attributes and prescreen.attributes["messaging.system"] == "kafka"

    if importlib.util.find_spec("opentelemetry.instrumentation.fastapi") is None:
        return  # HTTP server spans need opentelemetry-instrumentation-fastapi
    decision_requests = [s for s in http if "decision" in s.name]
    assert decision_requests, "the decision request has no HTTP server span"
    linked = {link.context.span_id for review in reviews for link in review.links}
    assert any(s.context.span_id in linked for s in decision_requests), "request not linked"


def _listing(spans: Sequence[ReadableSpan]) -> str:
    return "\n".join(
        f"{s.context.trace_id:032x} {s.name} parent={s.parent and s.parent.span_id:}"
        for s in sorted(spans, key=lambda s: s.start_time or 0)
    )
