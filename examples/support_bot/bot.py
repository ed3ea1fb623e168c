"""The bot: sequential answers wait for their release, parallel ones are shown at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from examples.support_bot.answers import Turn
from hitl_shared.client import HitlClient, Subscription
from hitl_shared.events import Release, Retraction

SEQUENTIAL = frozenset({"billing", "refunds"})  # wrong money answers are costly: wait
HOLDING = "Let me double-check that with a colleague; I'll get back to you here shortly."

Say = Callable[[str], None]


@dataclass
class Summary:
    """What happened in one run, for the caller (and the tests)."""

    statuses: Counter[str] = field(default_factory=Counter)
    shown: dict[str, str] = field(default_factory=dict)  # item id -> text the user saw
    corrections: dict[str, str] = field(default_factory=dict)  # item id -> corrected text
    follow_ups: dict[str, str] = field(default_factory=dict)  # item id -> text sent later


class SupportBot:
    def __init__(self, hitl: HitlClient, *, timeout: float, say: Say = print) -> None:
        self.hitl = hitl
        self.timeout = timeout
        self.say = say
        self.summary = Summary()
        self._parallel: set[str] = set()
        self._late: list[asyncio.Task[None]] = []

    async def ask(self, turn: Turn) -> str:
        self.say(f"[{turn.use_case}] user: {turn.question}")
        if turn.use_case in SEQUENTIAL:
            return await self._sequential(turn)
        return await self._parallel_answer(turn)

    async def _sequential(self, turn: Turn) -> str:
        result = await self.hitl.submit(turn.output, wait=True, timeout=self.timeout)
        self.summary.statuses[result.status] += 1
        item = turn.output.item_id
        if result.timed_out:
            self._late.append(asyncio.create_task(self._follow_up(turn)))
            await self.hitl.feedback(item, signal="abandon")
            text = HOLDING
        else:
            await self.hitl.feedback(item, signal="copy")
            text = result.text_or(HOLDING)
        self.summary.shown[item] = text
        self.say(f"[{turn.use_case}] bot ({result.status}, {result.waited_s:.2f}s): {text}")
        return text

    async def _follow_up(self, turn: Turn) -> None:
        """A held answer still reaches the user once a reviewer has decided."""
        item = turn.output.item_id
        result = await self.hitl.wait_for(item, timeout=3600)
        if result.text is not None:
            self.summary.follow_ups[item] = result.text
            self.say(f"[{turn.use_case}] bot (follow-up, {result.status}): {result.text}")

    async def _parallel_answer(self, turn: Turn) -> str:
        item = turn.output.item_id
        self._parallel.add(item)
        result = await self.hitl.submit(turn.output)  # fire and forget
        self.summary.statuses[result.status] += 1
        text = turn.output.output_text
        self.summary.shown[item] = text
        self.say(f"[{turn.use_case}] bot (shown at once): {text}")
        return text

    async def watch_corrections(self, events: Subscription) -> None:
        """Apply retractions, and releases that differ from what a parallel answer showed."""
        async for event in events:
            if event.item_id not in self._parallel:
                continue
            correction = _correction(event, self.summary.shown.get(event.item_id))
            if correction is not None:
                self.summary.corrections[event.item_id] = correction
                await self.hitl.feedback(event.item_id, signal="regenerate")
                self.say(f"[correction] {event.item_id}: {correction}")

    async def finish(self) -> None:
        for task in self._late:
            task.cancel()
        await asyncio.gather(*self._late, return_exceptions=True)


def _correction(event: Release | Retraction, shown: str | None) -> str | None:
    if isinstance(event, Retraction):
        return event.replacement_text or "Please disregard my previous answer."
    if event.text != shown:  # held for review (e.g. critical) and released changed
        return event.text
    return None
