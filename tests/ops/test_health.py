"""Consumer services answer liveness and readiness over HTTP."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from typing import Any

import pytest

from hitl_prescreen.app import wire as wire_prescreen
from hitl_shared.health import Health, serve_health
from hitl_shared.runtime import _kafka_reachable, _redis_reachable, consumers_of, hops_of
from hitl_shared.settings import Settings
from tests.support import running


async def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def _until_ready(port: int, timeout: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    status, body = await _get(port, "/readyz")
    while status != 200:
        assert asyncio.get_running_loop().time() < deadline, f"never ready: {body}"
        await asyncio.sleep(0.2)
        status, body = await _get(port, "/readyz")
    return body


@asynccontextmanager
async def _serving(health: Health):
    server = await serve_health(health, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _ok() -> None:
    return None


async def _down() -> None:
    raise ConnectionRefusedError("connection refused")


class _Consumer:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions

    def assignment(self) -> set[int]:
        return set(range(self.partitions))


@pytest.mark.unit
async def test_liveness_holds_while_a_dependency_is_down_but_readiness_says_which():
    health = Health(probes={"kafka": _ok, "redis": _down}, consumers=lambda: ())
    async with _serving(health) as port:
        assert (await _get(port, "/livez"))[0] == 200
        status, body = await _get(port, "/readyz")
    assert status == 503
    assert body["kafka"] == "ok" and body["redis"].startswith("ConnectionRefusedError")


@pytest.mark.unit
async def test_not_ready_until_every_consumer_has_an_assignment():
    consumers: list[tuple[str, Any]] = [("g1", _Consumer(2)), ("g2", None)]
    health = Health(probes={"kafka": _ok}, consumers=lambda: consumers)
    async with _serving(health) as port:
        first = await _get(port, "/readyz")
        consumers[1] = ("g2", _Consumer(1))
        second = await _get(port, "/readyz")
        missing = await _get(port, "/nope")
    assert first[0] == 503 and first[1]["consumers"]["g2"] == {"joined": False, "partitions": 0}
    assert second[0] == 200 and second[1]["consumers"]["g1"]["partitions"] == 2
    assert missing[0] == 404


@pytest.mark.integration
async def test_a_running_service_is_ready_once_its_group_joined(settings: Settings, redis):
    async with running(settings, wire_prescreen, redis) as wired:
        health = Health(
            probes={
                "kafka": lambda: _kafka_reachable(settings),
                "redis": lambda: _redis_reachable(settings),
            },
            consumers=consumers_of(hops_of(wired)),
            cache_s=0.0,
        )
        async with _serving(health) as port:
            body = await _until_ready(port)
    assert body["kafka"] == "ok" and body["redis"] == "ok"
    assert body["consumers"]["hitl-prescreen"]["joined"] is True
    assert body["consumers"]["hitl-prescreen"]["partitions"] == settings.partitions
