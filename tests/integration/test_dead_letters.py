"""Malformed input never kills a consumer: it lands in the topic's dead-letter topic."""

from __future__ import annotations

import base64
from contextlib import AsyncExitStack

import pytest

from hitl_feedback.app import wire as wire_feedback
from hitl_prescreen.app import wire as wire_prescreen
from hitl_router.app import wire as wire_router
from hitl_shared.topics import dead_letter_topic
from tests.factories import llm_output
from tests.support import produce, read_until, running

pytestmark = pytest.mark.integration

BAD = [
    b"not json at all",
    b'{"item_id": "x"',
    b'{"schema_version": 99, "item_id": "future"}',
    b"[" * 5000,
    '{"item_id": "\u202e\U0001f4a5"}'.encode(),
]


@pytest.mark.parametrize(
    ("topic_name", "wires"),
    [
        ("llm_outputs", (wire_prescreen,)),
        ("llm_screened", (wire_router,)),
        ("review_decisions", (wire_router, wire_feedback)),
        ("user_feedback", (wire_feedback,)),
    ],
)
async def test_malformed_messages_are_dead_lettered_and_consumers_keep_going(
    settings, redis, unique, topic_name, wires
):
    topic = getattr(settings.topics, topic_name)
    async with AsyncExitStack() as stack:
        for wire in wires:
            await stack.enter_async_context(running(settings, wire, redis))
        await produce(settings, topic, *BAD)
        expected = len(BAD) * len(wires)
        letters = await read_until(
            settings, dead_letter_topic(topic), lambda rs: len(rs) >= expected
        )
        if topic_name == "llm_outputs":
            good = f"after-bad-{unique}"
            await produce(settings, topic, llm_output(good).to_bytes())
            await read_until(
                settings,
                settings.topics.llm_screened,
                lambda rs: any(r["item_id"] == good for r in rs),
            )

    assert {base64.b64decode(letter["raw_b64"]) for letter in letters} == set(BAD)
    for letter in letters:
        assert letter["original_topic"] == topic
        assert letter["exc_class"] and letter["exc_msg"]
        assert letter["_headers"]["exc_class"] == letter["exc_class"]
    future = next(x for x in letters if base64.b64decode(x["raw_b64"]).startswith(b'{"schema'))
    assert "schema_version" in future["exc_msg"]
