"""SIGKILL each service in turn while 20 k items flow; every item is accounted for once.

Prescreen, router and feedback run as real processes (``python -m hitl_<name>``) on a
broker of this test's own. While the items are produced, each service in turn is killed
with SIGKILL and started again. At the end every item has exactly one routing outcome:
released once (never twice), or held with its review task in the Redis queue.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from hitl_shared.devservers import start_tansu
from hitl_shared.events import LLMOutput
from hitl_shared.kafka import ensure_topics
from hitl_shared.queue import ReviewQueue
from hitl_shared.settings import Settings
from tests.support import read_all, read_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ITEMS = int(os.environ.get("HITL_CRASH_ITEMS", "20000"))
SERVICES = ("prescreen", "router", "feedback")


def demo_items(count: int, run: str) -> list[LLMOutput]:
    lines = (ROOT / "demo" / "sample_outputs.jsonl").read_text(encoding="utf-8").splitlines()
    base = [json.loads(line) for line in lines if line.strip()]
    items = []
    for n in range(count):
        raw = dict(base[n % len(base)])
        raw["item_id"] = f"crash-{run}-{n}"
        items.append(LLMOutput.model_validate(raw))
    return items


class Services:
    """The consumer services as child processes that can be killed and started again."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.env = {
            **os.environ,
            "HITL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "HITL_REDIS_URL": settings.redis_url,
            "HITL_REDIS_PREFIX": settings.redis_prefix,
            "HITL_PARTITIONS": str(settings.partitions),
            "HITL_LOG_LEVEL": "WARNING",
        }
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", f"hitl_{name}"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def own_broker():
    server = start_tansu()
    try:
        yield server
    finally:
        server.stop()


async def _produce(settings: Settings, items: list[LLMOutput], per_second: float) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, linger_ms=20, enable_idempotence=False
    )
    await producer.start()
    try:
        chunk = 100
        for start in range(0, len(items), chunk):
            for item in items[start : start + chunk]:
                await producer.send(
                    settings.topics.llm_outputs, item.to_bytes(), key=item.item_id.encode()
                )
            await asyncio.sleep(chunk / per_second)
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.timeout(900)
async def test_sigkill_each_service_in_turn_loses_nothing_and_releases_nothing_twice(
    own_broker, redis_url, redis, unique, tmp_path
):
    settings = Settings(
        kafka_bootstrap=own_broker.url,
        redis_url=redis_url,
        redis_prefix=f"crash-{unique}",
        partitions=4,
    )
    await ensure_topics(settings)
    items = demo_items(ITEMS, unique)
    logs = Path(os.environ.get("HITL_TEST_LOG_DIR", tmp_path))
    logs.mkdir(parents=True, exist_ok=True)
    services = Services(settings, logs)
    for name in SERVICES:
        services.start(name)
    try:
        producing = asyncio.create_task(_produce(settings, items, per_second=600))
        for name in SERVICES:
            await asyncio.sleep(5)
            services.kill(name)
            await asyncio.sleep(1)
            services.start(name)
        await producing
        expected = {item.item_id for item in items}
        decisions = await read_until(
            settings,
            settings.topics.routing_decisions,
            lambda rs: {r["item_id"] for r in rs} >= expected,
            timeout=600,
        )
        to_release = {
            d["item_id"] for d in decisions if d["action"] in ("release", "release_and_review")
        }
        await read_until(
            settings,
            settings.topics.llm_released,
            lambda rs: {r["item_id"] for r in rs} >= to_release,
            timeout=300,
        )
        released = await read_all(settings, settings.topics.llm_released, idle=3.0)
    finally:
        services.stop_all()

    final: dict[str, str] = {}
    for decision in decisions:  # a replayed decision must agree with the first one
        assert final.setdefault(decision["item_id"], decision["action"]) == decision["action"]
    assert set(final) == expected

    releases = Counter(r["item_id"] for r in released if r.get("event_type") == "llm.release")
    twice = {item: n for item, n in releases.items() if n > 1}
    assert not twice, f"released more than once: {list(twice.items())[:10]}"

    queue = ReviewQueue(redis, settings.redis_prefix)
    for item_id, action in final.items():
        if action == "release":
            assert releases[item_id] == 1, f"{item_id} was never released"
        elif action in ("hold", "block"):
            assert releases[item_id] == 0, f"{item_id} released while held"
            task = await queue.task(f"task-{item_id}")
            assert task.get("state") == "queued", f"{item_id} has no queued review task"
        else:  # release_and_review: released now and queued for review after
            assert releases[item_id] == 1
