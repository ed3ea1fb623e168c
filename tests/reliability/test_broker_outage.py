"""The broker freezes for 10 s mid-stream; the services recover by themselves, losing nothing."""

from __future__ import annotations

import asyncio
import os
import signal
from contextlib import AsyncExitStack

import pytest

from hitl_prescreen.app import wire as wire_prescreen
from hitl_shared.devservers import start_tansu
from hitl_shared.kafka import ensure_topics
from hitl_shared.settings import Settings
from tests.factories import llm_output
from tests.support import produce, read_until, running

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker():
    """A broker of this test's own, since freezing it would stall every other test."""
    server = start_tansu()
    try:
        yield server
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()


async def test_services_recover_after_a_broker_freeze_without_losing_items(
    own_broker, redis_url, redis, unique
):
    settings = Settings(
        kafka_bootstrap=own_broker.url,
        redis_url=redis_url,
        redis_prefix=f"outage-{unique}",
        partitions=2,
    )
    await ensure_topics(settings)
    before = [f"pre-{unique}-{n}" for n in range(100)]
    after = [f"post-{unique}-{n}" for n in range(100)]
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running(settings, wire_prescreen, redis))
        await produce(
            settings, settings.topics.llm_outputs, *(llm_output(i).to_bytes() for i in before)
        )
        os.kill(own_broker.proc.pid, signal.SIGSTOP)
        await asyncio.sleep(10)
        os.kill(own_broker.proc.pid, signal.SIGCONT)
        await produce(
            settings, settings.topics.llm_outputs, *(llm_output(i).to_bytes() for i in after)
        )
        screened = await read_until(
            settings,
            settings.topics.llm_screened,
            lambda rs: {r["item_id"] for r in rs} >= set(before + after),
            timeout=120,
        )

    assert {s["item_id"] for s in screened} == set(before + after)
