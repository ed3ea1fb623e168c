"""A consumer service started as its container starts it: JSON logs, health endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from hitl_shared.devservers import free_port
from hitl_shared.settings import Settings
from tests.factories import llm_output
from tests.support import produce, read_until

pytestmark = pytest.mark.integration


async def _get(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\n\r\n".encode())
    await writer.drain()
    status = int((await reader.read()).split()[1])
    writer.close()
    return status


async def _status(port: int, path: str) -> int | None:
    try:
        return await _get(port, path)
    except OSError:
        return None


async def test_prescreen_process_turns_ready_logs_json_and_exports_metrics(settings: Settings):
    port = free_port()
    env = {
        **os.environ,
        "HITL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "HITL_REDIS_URL": settings.redis_url,
        "HITL_TOPIC_PREFIX": settings.topic_prefix,
        "HITL_HEALTH_PORT": str(port),
        "HITL_METRICS_INTERVAL_S": "0.5",
        "HITL_METRICS_EXPORTER": "console",
        "HITL_LOG_LEVEL": "INFO",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hitl_prescreen",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        ready = None
        async with asyncio.timeout(60):
            while ready != 200:
                await asyncio.sleep(0.2)
                ready = await _status(port, "/readyz")
        assert await _get(port, "/livez") == 200
        item = llm_output(f"proc-{settings.redis_prefix}")
        await produce(settings, settings.topics.llm_outputs, item.to_bytes(), key=b"k")
        await read_until(
            settings,
            settings.topics.llm_screened,
            lambda rs: any(r["item_id"] == item.item_id for r in rs),
        )
        await asyncio.sleep(1.5)  # three export periods
    finally:
        process.terminate()
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    lines = [line for line in stderr.decode().splitlines() if line.strip()]
    assert lines, "no log output"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any("started" in r["msg"] for r in records)
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    exported = stdout.decode()
    assert "hitl.hop.batch.size" in exported and "hitl.consumer.lag" in exported
