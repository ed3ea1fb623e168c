"""The policy file: validation with clear errors, hot reload that keeps the old policy on
a bad edit, and the router's background loop (reload + SLA escalation) on a real stack."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta

import pytest
import yaml

from hitl_router.app import wire
from hitl_router.policy import PolicyError, PolicySource, default_policy_text, parse_policy
from hitl_shared.events import utc_now
from hitl_shared.queue import ReviewQueue
from tests.router.helpers import pick, screened, until
from tests.support import by_item, produce, read_until, running


def _write(path, data: dict, mtime: float) -> None:
    path.write_text(yaml.safe_dump(data))
    os.utime(path, (mtime, mtime))


@pytest.mark.unit
def test_invalid_policy_files_say_what_is_wrong():
    data = yaml.safe_load(default_policy_text())
    data["tiers"]["medium"]["floor"] = 0.5  # above its review rate
    with pytest.raises(PolicyError, match=r"tiers\.medium.*floor 0\.5 is above review_rate"):
        parse_policy(yaml.safe_dump(data), source="p.yaml")
    with pytest.raises(PolicyError, match=r"p\.yaml: not valid YAML"):
        parse_policy("tiers: [", source="p.yaml")
    data["tiers"]["medium"]["floor"] = 0.15
    del data["tiers"]["critical"]
    with pytest.raises(PolicyError, match="lacks critical"):
        parse_policy(yaml.safe_dump(data), source="p.yaml")


@pytest.mark.unit
def test_reload_on_change_keeps_the_old_policy_when_the_new_file_is_bad(tmp_path, caplog):
    path = tmp_path / "policy.yaml"
    data = yaml.safe_load(default_policy_text())
    _write(path, {**data, "version": "v1"}, 1_000_000)
    source = PolicySource(str(path))
    assert source.policy.version == "v1"
    assert source.refresh() is False  # unchanged

    with caplog.at_level(logging.ERROR, logger="hitl.router.policy"):
        _write(path, {**data, "version": "v2", "weights": {"domain_sensitivity": 2}}, 1_000_010)
        assert source.refresh() is False
    assert source.policy.version == "v1"
    assert "invalid policy" in caplog.text and "keeping policy v1" in caplog.text

    _write(path, {**data, "version": "v3"}, 1_000_020)
    assert source.refresh() is True
    assert source.policy.version == "v3"
    assert source.last_error is None


@pytest.mark.integration
async def test_router_reloads_its_policy_file_and_escalates_overdue_tasks(
    settings, redis, unique, tmp_path
):
    path = tmp_path / "policy.yaml"
    data = yaml.safe_load(default_policy_text())
    data["escalation"] = {"sweep_seconds": 0.2, "step_minutes": 60}
    _write(path, data, 1_000_000)  # the shipped version: pick() below decides alike
    configured = settings.model_copy(update={"policy_file": str(path)})
    old = utc_now() - timedelta(hours=30)  # past the low tier's 24 h SLA
    late = pick(f"late-{unique}", lambda d: d.action == "hold", occurred_at=old)
    queue = ReviewQueue(redis, settings.redis_prefix)
    async with running(configured, wire, redis):
        await produce(settings, settings.topics.llm_screened, late.to_bytes())
        first = await read_until(settings, settings.topics.routing_decisions, by_item(late.item_id))
        await until(
            lambda: queue.task(f"task-{late.item_id}"),
            lambda task: task.get("bucket") == "L2:general:en",
        )

        _write(path, {**data, "version": "file-2"}, 1_000_010)
        fresh = screened(f"fresh-{unique}")
        async with asyncio.timeout(30):
            while True:
                await produce(settings, settings.topics.llm_screened, fresh.to_bytes())
                got = await read_until(
                    settings, settings.topics.routing_decisions, by_item(fresh.item_id)
                )
                if any(d["policy_version"] == "file-2" for d in got):
                    break
                fresh = screened(f"fresh-{unique}-{len(got)}")
                await asyncio.sleep(0.5)

    assert (
        next(d for d in first if d["item_id"] == late.item_id)["policy_version"] == data["version"]
    )
    task = await queue.task(f"task-{late.item_id}")
    assert task["escalations"] == "1"
