"""Liveness and readiness for the consumer-only services, over a tiny HTTP endpoint.

``/livez`` answers while the event loop runs (a wedged process stops answering, and
the orchestrator restarts it). ``/readyz`` is 200 only when Kafka and Redis answer
and every consumer has joined its group and received an assignment, which may be
empty: a replica beyond the partition count is idle but healthy, so ``--scale`` past
the partitions does not flap. No web framework: these services have none otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Probe = Callable[[], Awaitable[None]]
Consumers = Callable[[], Iterable[tuple[str, Any]]]


def consumer_state(consumer: Any) -> tuple[bool, int]:
    """(joined with an assignment, number of assigned partitions) of an aiokafka consumer."""
    if consumer is None:
        return False, 0
    partitions = len(consumer.assignment())
    subscription = getattr(getattr(consumer, "_subscription", None), "subscription", None)
    if subscription is None:
        return partitions > 0, partitions
    return getattr(subscription, "assignment", None) is not None or partitions > 0, partitions


@dataclass
class Health:
    """Readiness checks; dependency probes are cached briefly so probes stay cheap."""

    probes: Mapping[str, Probe]
    consumers: Consumers = lambda: ()
    cache_s: float = 2.0
    _cached: dict[str, tuple[float, str | None]] = field(default_factory=dict)

    async def _probe(self, name: str, probe: Probe) -> str | None:
        at, error = self._cached.get(name, (0.0, None))
        if time.monotonic() - at < self.cache_s:
            return error
        try:
            await asyncio.wait_for(probe(), 3.0)
            error = None
        except Exception as exc:  # any failure means not ready; say which
            error = f"{type(exc).__name__}: {exc}"[:300]
        self._cached[name] = (time.monotonic(), error)
        return error

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        report: dict[str, Any] = {}
        ready = True
        for name, probe in self.probes.items():
            error = await self._probe(name, probe)
            report[name] = "ok" if error is None else error
            ready = ready and error is None
        groups: dict[str, Any] = {}
        for group, consumer in self.consumers():
            joined, partitions = consumer_state(consumer)
            groups[group] = {"joined": joined, "partitions": partitions}
            ready = ready and joined
        report["consumers"] = groups
        return ready, report


async def _respond(writer: asyncio.StreamWriter, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
        + payload
    )
    await writer.drain()


async def _handle(
    health: Health, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        request = await asyncio.wait_for(reader.readline(), 5.0)
        parts = request.decode("latin-1").split()
        path = parts[1] if len(parts) >= 2 else ""
        if path in ("/livez", "/healthz"):
            await _respond(writer, 200, {"status": "alive"})
        elif path == "/readyz":
            ready, report = await health.readiness()
            await _respond(writer, 200 if ready else 503, {"ready": ready, **report})
        else:
            await _respond(writer, 404, {"error": "not found"})
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def serve_health(health: Health, host: str, port: int) -> asyncio.Server:
    """Start the endpoint; the caller closes the returned server."""
    return await asyncio.start_server(lambda r, w: _handle(health, r, w), host, port)
