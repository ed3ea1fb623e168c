"""The subscription helper on the real broker: filters, and group commits across restarts."""

from __future__ import annotations

import asyncio

import pytest

from hitl_shared.client import HitlClient, TopicMissingError
from hitl_shared.client_sync import HitlClientSync
from hitl_shared.events import Release, Retraction
from tests.support import produce

pytestmark = pytest.mark.integration


def _release(item_id: str, app: str = "support-bot") -> Release:
    return Release(item_id=item_id, app=app, outcome="auto_released", text="hi", policy_version="v")


def _retraction(item_id: str, app: str = "support-bot") -> Retraction:
    return Retraction(item_id=item_id, app=app, reason="reviewer reject", replacement_text="no")


async def _publish(settings, *events) -> None:
    for event in events:
        await produce(
            settings, settings.topics.llm_released, event.to_bytes(), key=event.item_id.encode()
        )


async def _take(events, n: int) -> list:
    got = []
    async with asyncio.timeout(30):
        async for event in events:
            got.append(event)
            if len(got) == n:
                return got
    return got


async def test_subscription_filters_by_app_and_kind(settings, unique):
    hitl = HitlClient(settings, app="support-bot", listen=False)
    async with (
        hitl,
        hitl.subscribe(kinds=("retraction",)) as retractions,
        hitl.subscribe() as everything,
    ):
        await _publish(
            settings,
            _release(f"r1-{unique}"),
            _retraction(f"x1-{unique}", app="other-app"),
            _retraction(f"x2-{unique}"),
        )
        mine = await _take(retractions, 1)
        both = await _take(everything, 2)
    assert [e.item_id for e in mine] == [f"x2-{unique}"]
    assert isinstance(mine[0], Retraction) and mine[0].replacement_text == "no"
    assert sorted(e.item_id for e in both) == [f"r1-{unique}", f"x2-{unique}"]


async def test_group_subscription_commits_only_what_was_handled(settings, unique):
    group = f"bot-{unique}"
    await _publish(settings, _retraction(f"a-{unique}"))
    async with HitlClient(settings, app="support-bot", listen=False) as hitl:
        async with hitl.subscribe(group_id=group, start="earliest") as events:
            first = await _take(events, 1)
        await _publish(settings, _retraction(f"b-{unique}"))
        with pytest.raises(RuntimeError, match="app crashed"):
            async with hitl.subscribe(group_id=group, start="earliest") as events:
                second = await _take(events, 1)
                raise RuntimeError("app crashed while handling it")
        async with hitl.subscribe(group_id=group, start="earliest") as events:
            third = await _take(events, 1)
    assert [e.item_id for e in first] == [f"a-{unique}"]
    assert [e.item_id for e in second] == [f"b-{unique}"]  # a was handled and committed
    assert [e.item_id for e in third] == [f"b-{unique}"]  # b was not: at-least-once


async def test_sync_subscription_polls_and_iterates(settings, unique):
    def app_thread() -> tuple[object, list[str]]:
        with (
            HitlClientSync(settings, app="support-bot", listen=False) as hitl,
            hitl.subscribe(kinds=("retraction",)) as events,
        ):
            idle = events.next_event(timeout=0.3)
            asyncio.run(
                _publish(settings, _retraction(f"s1-{unique}"), _retraction(f"s2-{unique}"))
            )
            got = []
            for event in events:
                got.append(event.item_id)
                if len(got) == 2:
                    break
            return idle, got

    idle, got = await asyncio.to_thread(app_thread)
    assert idle is None
    assert sorted(got) == [f"s1-{unique}", f"s2-{unique}"]


def test_sync_client_start_failure_is_raised_and_cleaned_up(settings):
    missing = settings.model_copy(update={"topic_prefix": "no-such-topics."})
    with pytest.raises(TopicMissingError, match="does not exist"):
        HitlClientSync(missing)
