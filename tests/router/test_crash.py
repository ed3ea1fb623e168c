"""SIGKILL the router process mid-stream and start it again: no item is lost and none
is released twice (on the topic, not merely by event id)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from hitl_router.domain import decide, default_policy
from tests.router.helpers import read_settled, screened
from tests.support import produce, read_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
N_ITEMS = 1500


def _start_router(settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("shared", "services/router")),
        "HITL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "HITL_REDIS_URL": settings.redis_url,
        "HITL_TOPIC_PREFIX": settings.topic_prefix,
        "HITL_REDIS_PREFIX": settings.redis_prefix,
        "HITL_PARTITIONS": str(settings.partitions),
        "HITL_SESSION_TIMEOUT_MS": "6000",
        "HITL_FETCH_MAX_WAIT_MS": "20",
        "HITL_BATCH_MAX_RECORDS": "100",
        "HITL_LOG_LEVEL": "INFO",
    }
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "hitl_router"], env=env, stdout=log, stderr=log, cwd=ROOT
        )


async def test_sigkill_mid_stream_loses_nothing_and_releases_nothing_twice(
    settings, redis, unique, tmp_path
):
    items = [screened(f"crash-{unique}-{i}") for i in range(N_ITEMS)]
    policy = default_policy()
    expected = {s.item_id for s in items if decide(s, policy).action == "release"}
    held = {s.item_id for s in items} - expected
    assert held and len(expected) > N_ITEMS * 0.8
    log_path = Path(os.environ.get("ROUTER_CRASH_LOG", tmp_path / "router.log"))
    topics = settings.topics

    first = _start_router(settings, log_path)
    try:
        await produce(settings, topics.llm_screened, *(s.to_bytes() for s in items[:1000]))
        await read_until(
            settings,
            topics.llm_released,
            lambda rs: len(rs) >= 150,
            timeout=90,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    await produce(settings, topics.llm_screened, *(s.to_bytes() for s in items[1000:]))

    second = _start_router(settings, log_path)
    try:
        released = await read_settled(
            settings,
            topics.llm_released,
            lambda rs: expected <= {r["item_id"] for r in rs},
            timeout=150,
            quiet=3.0,
        )
        decisions = await read_until(
            settings,
            topics.routing_decisions,
            lambda rs: {s.item_id for s in items} <= {r["item_id"] for r in rs},
            timeout=60,
        )
        tasks = await read_until(
            settings,
            topics.review_tasks,
            lambda rs: held <= {r["item_id"] for r in rs},
            timeout=60,
        )
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()

    counts = Counter(r["item_id"] for r in released)
    twice = {item: n for item, n in counts.items() if n > 1}
    assert not twice, f"released more than once: {dict(list(twice.items())[:10])}"
    assert set(counts) == expected  # held items wait for a human
    assert len({r["event_id"] for r in released}) == len(released)
    assert {d["item_id"] for d in decisions} == {s.item_id for s in items}
    assert {t["item_id"] for t in tasks} == held
    log_text = await asyncio.to_thread(log_path.read_text, errors="replace")
    recovery = [line for line in log_text.splitlines() if "outbox recovery" in line]
    print(f"{len(released)} released, {len(held)} held; recovery: {recovery}")
