"""Export replays the decision topic from Kafka and writes JSONL that validates against
the documented record schemas (round trip), through the real command."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from hitl_feedback.annotations import annotate
from hitl_feedback.datasets import read_jsonl, validation_path
from hitl_feedback.export import export_dataset
from hitl_feedback.store import FeedbackStore
from hitl_shared.events import ScreenedOutput
from tests.factories import llm_output
from tests.feedback.sample import decisions
from tests.support import produce

pytestmark = pytest.mark.integration


async def _seed(settings, redis) -> None:
    events = decisions()
    ns = "{" + settings.redis_prefix + "}"
    for item in ("i1", "i2", "i6"):  # the router still holds these items' records
        screened = ScreenedOutput(item_id=item, output=llm_output(item, prompt=f"Ask {item}"))
        await redis.hset(f"{ns}:item:{item}", "screened", screened.model_dump_json())
    # i7's router record is gone; the annotation the feedback service kept has the prompt.
    await FeedbackStore(redis, settings.redis_prefix).ingest(
        annotate(events[10], prompt="Ask i7 (kept)"), 500
    )
    values = [e.to_bytes() for e in events] + [events[1].to_bytes(), b"not json"]
    await produce(settings, settings.topics.review_decisions, *values)


async def test_preference_export_round_trip(settings, redis, tmp_path):
    await _seed(settings, redis)
    out = tmp_path / "prefs.jsonl"
    summary = await export_dataset(settings, redis, kind="preference", out=out, val_fraction=0.5)
    assert summary["decisions"] == 13  # the redelivered duplicate is counted once
    assert summary["undecodable"] == 1
    records = read_jsonl(out, "preference") + read_jsonl(validation_path(out), "preference")
    assert sorted(r.prompt for r in records) == ["Ask i2", "Ask i6", "Ask i7 (kept)"]
    assert {r.rejected for r in records} == {
        f"Original answer for {i}." for i in ("i2", "i6", "i7")
    }
    assert {r.chosen for r in records} == {f"Corrected answer for {i}." for i in ("i2", "i6", "i7")}
    again = tmp_path / "again.jsonl"
    await export_dataset(settings, redis, kind="preference", out=again, val_fraction=0.5)
    assert again.read_text() == out.read_text()  # deterministic split and order


async def test_sft_export_command(settings, redis, tmp_path):
    await _seed(settings, redis)
    out = tmp_path / "sft.jsonl"
    env = {
        **os.environ,
        "HITL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "HITL_REDIS_URL": settings.redis_url,
        "HITL_TOPIC_PREFIX": settings.topic_prefix,
        "HITL_REDIS_PREFIX": settings.redis_prefix,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hitl_feedback.export",
        "--kind",
        "sft",
        "--out",
        str(out),
        "--label",
        "factual_error",
        "--val-fraction",
        "0",
        "--include-approved",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    summary = json.loads(stdout)
    assert summary["train"] == 2 and "validation" not in summary
    records = read_jsonl(out, "sft")
    assert [r.messages[0].content for r in records] == ["Ask i2", "Ask i7 (kept)"]
    assert records[1].messages[1].content == "Corrected answer for i7."
