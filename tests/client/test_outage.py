"""The client rides out a frozen broker: publishes complete and waiting resumes after it."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from hitl_shared.client import HitlClient
from hitl_shared.devservers import ServerProcess, start_tansu
from hitl_shared.events import Release
from hitl_shared.kafka import ensure_topics
from hitl_shared.settings import Settings
from tests.factories import llm_output
from tests.support import produce, read_until

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker() -> Iterator[ServerProcess]:
    """A broker of its own: freezing the shared one would stall other tests' stacks."""
    server = start_tansu()
    try:
        yield server
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()


async def test_submit_and_wait_survive_a_broker_freeze(own_broker, unique):
    settings = Settings(kafka_bootstrap=own_broker.url, partitions=2, fetch_max_wait_ms=20)
    await ensure_topics(settings)
    item = llm_output(f"freeze-{unique}")
    async with HitlClient(settings) as hitl:
        os.kill(own_broker.proc.pid, signal.SIGSTOP)
        waiting = asyncio.create_task(hitl.submit(item, wait=True, timeout=60))
        await asyncio.sleep(3)
        assert not waiting.done()
        os.kill(own_broker.proc.pid, signal.SIGCONT)

        await read_until(
            settings,
            settings.topics.llm_outputs,
            lambda records: any(r["item_id"] == item.item_id for r in records),
        )
        release = Release(
            item_id=item.item_id, app=item.app, outcome="approved", text="ok", policy_version="v"
        )
        await produce(
            settings, settings.topics.llm_released, release.to_bytes(), key=item.item_id.encode()
        )
        result = await waiting
    assert result.status == "approved" and result.text == "ok"
