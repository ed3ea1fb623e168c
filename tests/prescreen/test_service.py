"""The prescreen service on a real broker and a real Redis."""

from __future__ import annotations

import json
from functools import partial

import pytest
from redis.asyncio import Redis

from hitl_prescreen.app import wire
from hitl_prescreen.baseline_store import BaselineStore
from hitl_prescreen.config import load_config, parse_config
from hitl_prescreen.detectors.anomaly import Baseline, features
from hitl_prescreen.edge_case_store import edge_case_key
from hitl_prescreen.screener import Screener
from hitl_shared.devservers import free_port
from hitl_shared.topics import dead_letter_topic
from tests.factories import llm_output
from tests.support import produce, read_until, running

pytestmark = pytest.mark.integration
# Budgets are wall-clock: generous here so a loaded test machine cannot add errors.
RELAXED = parse_config("detector_budget_ms: 60000\nredis_timeout_s: 10\n")


class Exploding:
    name = "toxicity"

    def detect(self, output, context):
        raise RuntimeError("model unavailable")


def _by_item(records: list[dict]) -> dict[str, dict]:
    return {r["item_id"]: r for r in records if "output" in r}


async def test_outputs_are_screened_with_spans_kb_matches_and_failures_marked(
    settings, redis, unique
):
    kb_text = "Take two tablets of ibuprofen every hour until the pain stops completely."
    await redis.hset(
        edge_case_key(settings.redis_prefix),
        "case-1",
        json.dumps(
            {"case_id": "case-1", "text": kb_text, "labels": ["alignment_safety"], "item_id": "o"}
        ),
    )
    leak = f"leak-{unique}"
    text = "😀 您好 Mail jane@example.com or card 4111 1111 1111 1111."
    items = [
        llm_output(leak, output_text=text),
        llm_output(f"kb-{unique}", output_text=kb_text.lower()),
        llm_output(f"clean-{unique}"),
    ]
    async with running(settings, partial(wire, config=RELAXED), redis) as hop:
        await produce(
            settings, settings.topics.llm_outputs, b"{not json", *(i.to_bytes() for i in items)
        )
        ids = {i.item_id for i in items}
        screened = _by_item(
            await read_until(
                settings,
                settings.topics.llm_screened,
                lambda rs: ids <= set(_by_item(rs)),
                timeout=60,
            )
        )
        # a broken detector: the next item still goes on, marked for review
        hop.screener.detectors["toxicity"] = Exploding()
        broken = f"broken-{unique}"
        await produce(settings, settings.topics.llm_outputs, llm_output(broken).to_bytes())
        after = _by_item(
            await read_until(
                settings,
                settings.topics.llm_screened,
                lambda rs: broken in _by_item(rs),
                timeout=60,
            )
        )
        letters = await read_until(
            settings, dead_letter_topic(settings.topics.llm_outputs), lambda rs: len(rs) >= 1
        )

    flags = screened[leak]["flags"]
    covered = {(f["category"], text[f["start"] : f["end"]]) for f in flags}
    assert ("email", "jane@example.com") in covered
    assert ("payment_card", "4111 1111 1111 1111") in covered
    assert screened[leak]["scores"]["pii"] >= 0.9
    kb_flags = screened[f"kb-{unique}"]["flags"]
    assert [f["category"] for f in kb_flags] == ["known_edge_case"]
    assert "case-1" in kb_flags[0]["explanation"]
    assert screened[f"clean-{unique}"]["flags"] == []
    assert after[broken]["detector_errors"] == ["toxicity: RuntimeError: model unavailable"]
    assert any(f["category"] == "detector_error" for f in after[broken]["flags"])
    assert letters[0]["exc_class"] == "ValidationError"


async def test_baseline_survives_a_restart_and_counts_each_item_once(settings, redis, unique):
    config = parse_config(
        "detector_budget_ms: 60000\ndetectors:\n  anomaly:\n    min_samples: 20\n"
    )
    app = f"app-{unique}"
    first = Screener(config, redis, settings.redis_prefix)
    for n in range(30):
        text = f"Your refund number {n} will appear within five business days of the scan."
        await first.handle(llm_output(f"i{n}", app=app, output_text=text))
    await first.baselines.flush()  # updates are sent in batches
    # redelivery of items already counted changes nothing
    for n in range(5):
        await first.handle(llm_output(f"i{n}", app=app, output_text="x" * 5000))
    await first.baselines.flush()
    stored = await redis.hgetall(first.baselines.key(app))
    assert int(stored[b"n"]) == 30

    restarted = Screener(config, redis, settings.redis_prefix)  # a fresh process
    baseline = await restarted.baselines.get(app)
    assert baseline.count == 30
    odd = await restarted.handle(
        llm_output(f"odd-{unique}", app=app, output_text="这是完全不同的回答" * 40)
    )
    assert {f.category for f in odd.flags} >= {"outlier_non_latin_share", "outlier_log_length"}


async def test_unreachable_redis_marks_the_item_for_review_instead_of_stopping_it(settings):
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    try:
        relaxed_budget = load_config().model_copy(update={"detector_budget_ms": 60_000.0})
        screener = Screener(relaxed_budget, dead, settings.redis_prefix)
        result = await screener.handle(llm_output("no-redis", output_text="Card 4111111111111111"))
    finally:
        await dead.aclose()
    assert {e.split(":", 1)[0] for e in result.detector_errors} == {"anomaly", "edge_cases"}
    categories = {f.category for f in result.flags}
    assert {"payment_card", "detector_error"} <= categories


async def test_one_flush_updates_each_app_once_per_item_as_welford_would(settings, redis, unique):
    store = BaselineStore(redis, settings.redis_prefix, flush_every=10_000)
    expected = {app: Baseline() for app in ("a", "b")}
    for n in range(1200):  # more than one script call's worth for app "a"
        app = "a" if n % 5 else "b"
        values = features(f"Answer {n}: " + "words and numbers " * (n % 13))
        store.add(app, f"{unique}-{n}", values)
        expected[app].add(values)
        if n % 100 == 0:
            store.add(app, f"{unique}-{n}", values)  # a redelivery inside the same flush
    await store.flush()
    for app, want in expected.items():
        got = await BaselineStore(redis, settings.redis_prefix).get(app)
        assert got.count == want.count
        for name in want.mean:
            assert got.mean[name] == pytest.approx(want.mean[name], rel=1e-12)
            assert got.m2[name] == pytest.approx(want.m2[name], rel=1e-9)
