"""Nothing from an output's text reaches the logs: not PII, not secrets, not on failure."""

from __future__ import annotations

import json
import logging
from contextlib import AsyncExitStack

import pytest

from hitl_prescreen.app import wire as wire_prescreen
from hitl_router.app import wire as wire_router
from hitl_shared.topics import dead_letter_topic
from tests.factories import llm_output
from tests.support import produce, read_until, running

pytestmark = pytest.mark.integration

CARD = "4111 1111 1111 1111"
SECRET = "AKIAIOSFODNN7EXAMPLE"
EMAIL = "jane.doe@example.org"


async def test_flagged_and_malformed_outputs_leave_no_pii_or_secret_in_logs(
    settings, redis, unique, caplog
):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="aiokafka")  # as every service configures it
    leaky = f"Card {CARD}, key {SECRET}, mail {EMAIL}."
    good = llm_output(f"leak-{unique}", output_text=leaky)
    payload = json.loads(good.to_bytes())
    payload["confidence"] = f"not a number {CARD} {SECRET}"  # malformed, quoting the secrets
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running(settings, wire_prescreen, redis))
        await stack.enter_async_context(running(settings, wire_router, redis))
        await produce(
            settings, settings.topics.llm_outputs, good.to_bytes(), json.dumps(payload).encode()
        )
        await read_until(
            settings,
            settings.topics.routing_decisions,
            lambda rs: any(r["item_id"] == good.item_id for r in rs),
        )
        letters = await read_until(
            settings, dead_letter_topic(settings.topics.llm_outputs), lambda rs: len(rs) >= 1
        )

    assert SECRET in letters[0]["exc_msg"]  # the dead letter keeps the whole reason
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "dead-lettered" in logged and "confidence" in logged
    for needle in (CARD, SECRET, EMAIL, "4111111111111111"):
        assert needle not in logged
