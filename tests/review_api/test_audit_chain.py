"""The audit chain under concurrent writers with stale head caches, on real Redis."""

from __future__ import annotations

import asyncio

import pytest

from hitl_review_api.audit import AuditLog

pytestmark = pytest.mark.integration


async def test_racing_writers_keep_one_valid_chain(redis, unique):
    # two API processes: each caches heads it has seen, and both are soon out of date
    one, two = AuditLog(redis, f"t{unique}"), AuditLog(redis, f"t{unique}")

    async def staged(log: AuditLog, n: int) -> None:
        record = {"actor": f"s{n}", "action": "claim"}
        async with redis.pipeline(transaction=False) as pipe:
            entry = await log.stage(pipe, "item-1", record)
            result = (await pipe.execute())[-1]
        await log.settle("item-1", record, entry, result)

    await asyncio.gather(
        *(one.append("item-1", {"actor": f"a{n}", "action": "claim"}) for n in range(15)),
        *(two.append("item-1", {"actor": f"b{n}", "action": "claim"}) for n in range(15)),
        *(staged(one if n % 2 else two, n) for n in range(10)),
    )
    entries, verification = await one.checked("item-1")
    assert verification.ok, verification
    assert [e["seq"] for e in entries] == list(range(40))
    assert {e["actor"] for e in entries} == (
        {f"a{n}" for n in range(15)} | {f"b{n}" for n in range(15)} | {f"s{n}" for n in range(10)}
    )
