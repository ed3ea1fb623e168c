"""Detector worker processes: same verdicts as inline screening, the knowledge base
reaches every worker, a killed worker loses no item, a stuck one is killed and an item
whose detector never returns is marked for review unscreened, and the service screens
with them on a real broker."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from functools import partial
from pathlib import Path

import pytest

from hitl_prescreen.app import wire
from hitl_prescreen.config import parse_config
from hitl_prescreen.detectors.anomaly import Baseline, features
from hitl_prescreen.detectors.edge_cases import EdgeCase, EdgeCaseIndex
from hitl_prescreen.edge_case_store import edge_case_key
from hitl_prescreen.evaluate import as_output, load_items
from hitl_prescreen.workers import Batch, DetectorPool, judge_batch
from tests.factories import llm_output
from tests.prescreen.hanging import STUCK_MARKER, start_worker_with_a_hanging_detector
from tests.support import produce, read_until, running

RELAXED = parse_config("detector_budget_ms: 60000\nredis_timeout_s: 10\n")
IMPATIENT = RELAXED.model_copy(update={"worker_timeout_s": 1.0})
CARD = "Card 4111 1111 1111 1111, thanks."
KB_TEXT = "Take two tablets of ibuprofen every hour until the pain stops completely."


def _verdicts(judged):
    return [(j.verdict.flags, j.verdict.scores, j.verdict.errors, j.features) for j in judged]


@pytest.fixture(scope="module")
async def pool():
    made = DetectorPool(RELAXED, workers=2)
    await made.start()
    yield made
    made.close()


@pytest.mark.unit
async def test_pooled_verdicts_equal_inline_ones_on_the_evaluation_set(pool):
    outputs = [as_output(item) for item in load_items()]
    baseline = Baseline()
    for o in outputs[:100]:
        baseline.add(features(o.output_text))
    cases = [EdgeCase(f"case-{n}", outputs[n * 7].output_text) for n in range(30)]
    batch = Batch(
        outputs,
        baselines={o.app: baseline for o in outputs},
        load_errors={outputs[0].app: ("edge_cases: state unavailable (test)",)},
        kb_version=1,
        kb_cases=cases,
    )
    inline = judge_batch(batch, RELAXED.build(), RELAXED, EdgeCaseIndex.build(cases))
    pooled = await pool.judge(batch)
    assert _verdicts(pooled) == _verdicts(inline)
    assert any(j.verdict.flags for j in pooled)  # the set is not all clean


@pytest.mark.unit
async def test_every_worker_screens_with_the_newest_knowledge_base(pool):
    item = llm_output("kb-1", output_text=KB_TEXT.upper())

    def batch(version: int, text: str) -> Batch:
        # many copies, so every worker gets a chunk of each batch
        return Batch([item] * 40, kb_version=version, kb_cases=[EdgeCase("c", text)])

    first = await pool.judge(batch(7, KB_TEXT))
    assert all(("edge_cases", "known_edge_case") in _kinds(j) for j in first)
    changed = await pool.judge(batch(8, "A completely different answer about shipping times."))
    assert not any(("edge_cases", "known_edge_case") in _kinds(j) for j in changed)


def _kinds(judged):
    return {(f.detector, f.category) for f in judged.verdict.flags}


@pytest.mark.unit
async def test_a_killed_worker_is_replaced_and_its_chunk_still_screened():
    pool = DetectorPool(RELAXED, workers=2)
    await pool.start()
    try:
        os.kill(pool.pids()[0], signal.SIGKILL)
        card = llm_output("card", output_text=CARD)
        judged = await pool.judge(Batch([card] * 10))
        assert all(("pii", "payment_card") in _kinds(j) for j in judged)
        again = await pool.judge(Batch([card] * 10))  # the new pool serves the next batch
        assert len(again) == 10
        assert all(os.path.exists(f"/proc/{pid}") for pid in pool.pids())
    finally:
        pool.close()


class HangingPool(DetectorPool):
    """Workers whose detectors include one that never returns on the stuck marker."""

    start_worker = staticmethod(start_worker_with_a_hanging_detector)


@pytest.mark.unit
async def test_an_item_whose_detector_never_returns_is_marked_for_review_unscreened():
    pool = HangingPool(IMPATIENT, workers=2)
    await pool.start()
    try:
        cards = [llm_output(f"card-{n}", output_text=CARD) for n in range(9)]
        stuck = llm_output("stuck", output_text=f"{CARD} {STUCK_MARKER}")
        batch = [*cards[:4], stuck, *cards[4:]]
        judged = await pool.judge(Batch(batch))
        verdicts = {o.item_id: j.verdict for o, j in zip(batch, judged, strict=True)}
        assert [e.split(":")[0] for e in verdicts["stuck"].errors] == ["prescreen"]
        assert "timed out after 1 s" in verdicts["stuck"].errors[0]
        assert [(f.detector, f.category) for f in verdicts["stuck"].flags] == [
            ("prescreen", "detector_error")
        ]
        for card in cards:  # the others were screened in full
            assert ("pii", "payment_card") in {
                (f.detector, f.category) for f in verdicts[card.item_id].flags
            }
            assert not verdicts[card.item_id].errors
        assert pool.restarts >= 2  # the stuck workers were replaced
        after = await pool.judge(Batch(cards[:3]))  # and the pool serves the next batch
        assert all(("pii", "payment_card") in _kinds(j) for j in after)
    finally:
        pool.close()


@pytest.mark.integration
async def test_the_service_screens_with_worker_processes(settings, redis, unique):
    await redis.hset(
        edge_case_key(settings.redis_prefix),
        "case-1",
        f'{{"case_id": "case-1", "text": "{KB_TEXT}", "labels": ["alignment_safety"]}}',
    )
    items = [
        llm_output(f"card-{unique}", output_text="😀 Card 4111 1111 1111 1111 or jane@example.com"),
        llm_output(f"kb-{unique}", output_text=KB_TEXT.lower()),
        *(llm_output(f"clean-{unique}-{n}") for n in range(30)),
    ]
    ids = {i.item_id for i in items}
    async with running(settings, partial(wire, config=RELAXED, workers=2), redis) as hop:
        raw = [i.to_bytes() for i in items]
        await produce(settings, settings.topics.llm_outputs, b"{bad", *raw)
        records = await read_until(
            settings,
            settings.topics.llm_screened,
            lambda rs: ids <= {r["item_id"] for r in rs},
            timeout=60,
        )
        workers = hop.screener.pool.pids()
    async with asyncio.timeout(10):  # stopping the service ended its workers
        while any(_alive(pid) for pid in workers):  # noqa: ASYNC110 - polling /proc
            await asyncio.sleep(0.1)
    screened = {r["item_id"]: r for r in records}
    card = screened[f"card-{unique}"]
    text = card["output"]["output_text"]
    covered = {text[f["start"] : f["end"]] for f in card["flags"]}
    assert {"4111 1111 1111 1111", "jane@example.com"} <= covered
    assert any(f["category"] == "known_edge_case" for f in screened[f"kb-{unique}"]["flags"])
    assert not any(r["detector_errors"] for r in records)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid and stat[0] != "Z":
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.integration
async def test_workers_end_when_the_service_process_is_killed(settings):
    env = {
        **os.environ,
        "HITL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "HITL_REDIS_URL": settings.redis_url,
        "HITL_TOPIC_PREFIX": settings.topic_prefix,
        "HITL_REDIS_PREFIX": settings.redis_prefix,
        "HITL_PRESCREEN_WORKERS": "2",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hitl_prescreen", env=env, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        workers: list[int] = []
        async with asyncio.timeout(60):
            while len(workers) < 2:  # the pool's workers (plus its resource tracker)
                await asyncio.sleep(0.2)
                workers = [p for p in _children(process.pid) if "spawn_main" in _cmdline(p)]
    finally:
        process.kill()  # SIGKILL: no clean shutdown of the pool
        await process.wait()
    async with asyncio.timeout(10):
        while any(_alive(pid) for pid in workers):  # noqa: ASYNC110 - polling /proc
            await asyncio.sleep(0.1)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
