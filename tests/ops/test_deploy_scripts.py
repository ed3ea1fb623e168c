"""The scripts the containers run: topic creation and the curl-less health check."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from hitl_shared.health import Health, serve_health
from hitl_shared.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


async def _run(*args: str, env: dict[str, str] | None = None) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), 60)


@pytest.mark.integration
async def test_topic_init_creates_every_topic_with_its_partitions(kafka_bootstrap, unique):
    prefix = f"init{unique}."
    code = await _run(
        str(DEPLOY / "init_topics.py"),
        env={
            "HITL_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "HITL_TOPIC_PREFIX": prefix,
            "HITL_PARTITIONS": "3",
        },
    )
    assert code == 0
    expected = Settings(topic_prefix=prefix).topics.all()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(expected)
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in described}
    assert partitions == dict.fromkeys(expected, 3)


async def _fail() -> None:
    raise ConnectionRefusedError


async def _ok() -> None:
    return None


@pytest.mark.unit
async def test_the_container_health_check_follows_readiness():
    ready = await serve_health(Health(probes={"kafka": _ok}), "127.0.0.1", 0)
    down = await serve_health(Health(probes={"kafka": _fail}), "127.0.0.1", 0)
    try:
        urls = [f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}/readyz" for s in (ready, down)]
        codes = [await _run(str(DEPLOY / "healthcheck.py"), url) for url in urls]
    finally:
        ready.close()
        down.close()
    assert codes == [0, 1]
