"""A bulk BatchHop on a real broker: a bad record is dead-lettered, a failing bulk call falls back
to one record at a time, and every good record comes out once, whether the batch is handled
whole or in concurrent slices; an outage in one slice redelivers the batch."""

from __future__ import annotations

from collections import Counter

import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import TypeAdapter

from hitl_shared.events import ScreenedOutput
from hitl_shared.kafka import BatchHop, Outgoing
from hitl_shared.topics import dead_letter_topic
from tests.router.helpers import read_settled, screened
from tests.support import produce, running

pytestmark = pytest.mark.integration


def bulk_hop(source: str, group: str, one, many, slices: int):
    """A service wiring with one bulk hop from ``source``."""

    async def wire(settings, broker, redis, provider: TracerProvider):
        return [
            BatchHop(
                broker,
                settings,
                provider.get_tracer("test"),
                topic=source,
                group_id=group,
                decoder=TypeAdapter(ScreenedOutput),
                handler=one,
                bulk=many,
                bulk_slices=slices,
            )
        ]

    return wire


@pytest.mark.parametrize("slices", [1, 3])
async def test_bulk_hop_dead_letters_bad_records_and_falls_back_per_record(
    settings, redis, unique, slices
):
    topics = settings.topics
    source, sink = topics.llm_screened, topics.llm_released

    async def one(event: ScreenedOutput) -> list[Outgoing]:
        if event.item_id.startswith("poison"):
            raise ValueError("poisoned item")
        return [Outgoing(sink, event)]

    async def many(events, spans):
        if any(e.item_id.startswith("boom") for e in events):
            raise RuntimeError("bulk path bug")
        return [
            ValueError("poisoned item") if e.item_id.startswith("poison") else [Outgoing(sink, e)]
            for e in events
        ]

    wire = bulk_hop(source, f"bulk-{unique}", one, many, slices)
    good = [screened(f"ok-{unique}-{i}") for i in range(20)]
    boom = screened(f"boom-{unique}")
    poison = screened(f"poison-{unique}")
    async with running(settings, wire, redis):
        await produce(
            settings,
            source,
            *(s.to_bytes() for s in good[:10]),
            b"{not json",
            poison.to_bytes(),
            *(s.to_bytes() for s in good[10:]),
        )
        await produce(settings, source, boom.to_bytes())
        wanted = {s.item_id for s in [*good, boom]}
        out = await read_settled(settings, sink, lambda rs: wanted <= {r["item_id"] for r in rs})
        letters = await read_settled(settings, dead_letter_topic(source), lambda rs: len(rs) >= 2)

    assert Counter(r["item_id"] for r in out) == dict.fromkeys(wanted, 1)
    assert sorted(letter["exc_class"] for letter in letters) == ["ValidationError", "ValueError"]
    assert {letter["item_id"] for letter in letters} == {None, poison.item_id}
    assert all(r["_headers"].get("traceparent") for r in out)


async def test_an_outage_in_one_slice_redelivers_the_whole_batch(settings, redis, unique):
    source, sink = settings.topics.llm_screened, settings.topics.llm_released
    calls: list[int] = []
    handled: list[str] = []

    async def one(event: ScreenedOutput) -> list[Outgoing]:
        return [Outgoing(sink, event)]

    async def many(events, spans):
        calls.append(len(events))
        if any(e.item_id.startswith("flaky") for e in events) and not handled:
            handled.append("outage")
            raise ConnectionError("redis went away")
        return [[Outgoing(sink, e)] for e in events]

    wire = bulk_hop(source, f"slices-{unique}", one, many, slices=4)
    items = [screened(f"ok-{unique}-{i}") for i in range(30)]
    items.insert(17, screened(f"flaky-{unique}"))
    async with running(settings, wire, redis):
        await produce(settings, source, *(s.to_bytes() for s in items))
        wanted = {s.item_id for s in items}
        out = await read_settled(settings, sink, lambda rs: wanted <= {r["item_id"] for r in rs})

    assert handled == ["outage"]
    assert wanted == {r["item_id"] for r in out}  # at least once: other slices may repeat
    assert max(calls) < len(items)  # the batch really was sliced
