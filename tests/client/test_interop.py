"""A non-Python app (librdkafka via confluent-kafka) publishes raw JSON and gets its release."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from hitl_shared.events import LLMOutput
from tests.client.stack import auto_released

pytestmark = pytest.mark.integration


def _raw_output(item_id: str) -> dict[str, Any]:
    """What an app in another language writes, by hand, from docs/contracts."""
    return {
        "schema_version": 1,
        "item_id": item_id,
        "occurred_at": "2026-01-01T12:00:00Z",
        "app": "support-bot",
        "use_case": "shipping",
        "content_category": "general",
        "prompt": "When will my parcel arrive?",
        "model": "demo-model-1",
        "output_text": "Standard shipping takes 3 to 5 business days.",
        "confidence": 0.93,
    }


def _publish(bootstrap: str, topic: str, item_id: str, traceparent: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False})
    errors: list[Any] = []
    producer.produce(
        topic,
        json.dumps(_raw_output(item_id)).encode(),
        key=item_id.encode(),
        headers=[("content-type", b"application/json"), ("traceparent", traceparent.encode())],
        on_delivery=lambda err, _msg: errors.append(err) if err else None,
    )
    assert producer.flush(30) == 0 and not errors, errors


def _await_release(bootstrap: str, topic: str, item_id: str, timeout: float) -> Any:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "interop", "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            if message.key() == item_id.encode():
                return message
        raise AssertionError(f"no release of {item_id} on {topic} within {timeout}s")
    finally:
        consumer.close()


async def test_librdkafka_app_publishes_raw_json_and_receives_its_release(
    stack, stack_settings, unique
):
    settings = stack_settings
    item_id = auto_released(lambda i: LLMOutput(**_raw_output(i)), f"rdkafka-{unique}").item_id
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    await asyncio.to_thread(
        _publish, settings.kafka_bootstrap, settings.topics.llm_outputs, item_id, traceparent
    )
    message = await asyncio.to_thread(
        _await_release, settings.kafka_bootstrap, settings.topics.llm_released, item_id, 60
    )

    release = json.loads(message.value())
    assert release["event_type"] == "llm.release" and release["outcome"] == "auto_released"
    assert release["text"] == _raw_output(item_id)["output_text"]
    headers = {k: v.decode() for k, v in message.headers() or []}
    assert headers["traceparent"].split("-")[1] == trace_id  # one trace across languages
