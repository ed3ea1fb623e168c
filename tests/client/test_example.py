"""The example support bot on the real stack, with reviewers editing whatever is held."""

from __future__ import annotations

import asyncio

import pytest

from examples.support_bot.__main__ import run
from examples.support_bot.answers import conversation, load
from examples.support_bot.bot import SEQUENTIAL

pytestmark = pytest.mark.integration

EDITED = "A reviewer rewrote this answer."


@pytest.mark.unit
def test_conversation_alternates_use_cases_with_unique_ids():
    script = conversation(load("r1"), 6)
    assert [t.use_case for t in script] == ["billing", "refunds", "shipping"] * 2
    assert len({t.output.item_id for t in script}) == 6
    assert all(t.output.item_id.endswith("-r1") and t.output.app == "support-bot" for t in script)


async def test_support_bot_sequential_and_parallel(stack, stack_settings, unique):
    lines: list[str] = []
    bot = asyncio.create_task(
        run(stack_settings, turns=6, timeout=3.0, linger=15.0, run_id=unique, say=lines.append)
    )
    decided = await stack.work(
        lambda _item: {"verdict": "edit", "edited_text": EDITED, "reason": "example"},
        done=bot.done,
        timeout=120,
    )
    summary = await bot

    assert decided, "nothing was held: the review paths went untested"
    script = conversation(load(unique), 6)
    assert set(summary.shown) == {t.output.item_id for t in script}
    assert summary.statuses["submitted"] == 2  # the two shipping answers: fire and forget
    assert sum(summary.statuses.values()) == 6
    assert lines[-1].startswith("summary:")
    for turn in script:
        item = turn.output.item_id
        if item not in decided:
            continue
        if turn.use_case in SEQUENTIAL:  # the user got the edit, at once or as a follow-up
            assert EDITED in (summary.shown[item], summary.follow_ups.get(item)), item
        else:  # shown at once, then corrected
            assert summary.corrections.get(item) == EDITED, item
