"""Append-only, hash-chained audit trail of every human action on an item.

``{ns}:audit:<item_id>`` is a Redis list of JSON entries. Each entry carries
``prev_hash`` (the previous entry's hash, or 64 zeros) and ``hash`` = sha256(prev_hash +
canonical JSON of the entry without ``hash``). Redis Lua has no SHA-256, so the hash is
computed here and the append is a compare-and-append script that only pushes when the
list's head (kept beside it in ``{ns}:audit:<item_id>:head``) and length are still the
ones the entry was chained to; a concurrent writer makes us re-chain and retry. The head
last seen per item is cached in-process, so an append is usually one round trip (a new
item's head is the genesis). Editing, reordering or deleting any entry afterwards breaks
``verify``; dropping the newest entries is caught by comparing with the stored head.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

GENESIS = "0" * 64
MAX_ATTEMPTS = 50
LOCK_STRIPES = 64

_APPEND = """
local prev = redis.call('HGET', KEYS[2], 'hash')
local length = redis.call('LLEN', KEYS[1])
if not prev then
  prev = '0000000000000000000000000000000000000000000000000000000000000000'
  if length > 0 then prev = cjson.decode(redis.call('LINDEX', KEYS[1], -1))['hash'] end
end
if prev ~= ARGV[1] or length ~= tonumber(ARGV[2]) then return {0, prev, length} end
redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], 'hash', ARGV[4])
return {1, ARGV[4], length + 1}
"""
HEADS_CACHED = 10_000


def canonical(value: Any) -> str:
    """One JSON spelling per value: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(body)).encode()).hexdigest()


class Verification(BaseModel):
    ok: bool
    entries: int
    head: str
    broken_at: int | None = None
    problem: str | None = None


def verify(entries: list[dict[str, Any]], stored_head: str | None = None) -> Verification:
    prev = GENESIS
    for index, entry in enumerate(entries):
        body = {k: v for k, v in entry.items() if k != "hash"}
        if entry.get("prev_hash") != prev:
            return Verification(
                ok=False, entries=len(entries), head=prev, broken_at=index, problem="prev_hash"
            )
        if entry.get("seq") != index:
            return Verification(
                ok=False, entries=len(entries), head=prev, broken_at=index, problem="seq"
            )
        if entry_hash(prev, body) != entry.get("hash"):
            return Verification(
                ok=False, entries=len(entries), head=prev, broken_at=index, problem="hash"
            )
        prev = entry["hash"]
    if stored_head is not None and stored_head != prev:
        return Verification(
            ok=False, entries=len(entries), head=prev, broken_at=len(entries), problem="truncated"
        )
    return Verification(ok=True, entries=len(entries), head=prev)


class AuditLog:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.ns = "{" + namespace + "}"
        self._append = redis.register_script(_APPEND)
        self._heads: dict[str, tuple[str, int]] = {}
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]

    def key(self, item_id: str) -> str:
        return f"{self.ns}:audit:{item_id}"

    def _entry(self, item_id: str, record: dict[str, Any], prev: str, seq: int) -> dict[str, Any]:
        body = {
            **record,
            "item_id": item_id,
            "seq": seq,
            "at": datetime.now(UTC).isoformat(),
            "prev_hash": prev,
        }
        return {**body, "hash": entry_hash(prev, body)}

    async def _push(self, client: Any, item_id: str, entry: dict[str, Any]) -> Any:
        key = self.key(item_id)
        return await self._append(
            keys=[key, f"{key}:head"],
            args=[entry["prev_hash"], entry["seq"], canonical(entry), entry["hash"]],
            client=client,
        )

    def _settled(self, item_id: str, result: Any) -> bool:
        stored, head, length = result
        self._remember(item_id, head.decode() if isinstance(head, bytes) else str(head), length)
        return int(stored) == 1

    async def append(self, item_id: str, record: dict[str, Any]) -> dict[str, Any]:
        """Chain ``record`` after the current head; returns the stored entry.

        Appends of one process are serialized per item (striped locks), so only other
        processes can race us, and each lost race re-chains on the head it returned.
        """
        async with self._locks[hash(item_id) % len(self._locks)]:
            for attempt in range(MAX_ATTEMPTS):
                entry = self._entry(item_id, record, *self._heads.get(item_id, (GENESIS, 0)))
                if self._settled(item_id, await self._push(self.redis, item_id, entry)):
                    return entry
                await asyncio.sleep(random.uniform(0, 0.002 * attempt))
        raise RuntimeError(f"audit append for {item_id} kept racing; gave up")

    async def stage(self, pipe: Pipeline, item_id: str, record: dict[str, Any]) -> dict[str, Any]:
        """Queue an append on the caller's pipeline (one round trip with its other work)."""
        entry = self._entry(item_id, record, *self._heads.get(item_id, (GENESIS, 0)))
        await self._push(pipe, item_id, entry)
        return entry

    async def settle(
        self, item_id: str, record: dict[str, Any], entry: dict[str, Any], result: Any
    ) -> dict[str, Any]:
        """Finish a staged append: done, or re-chained on the current head if it raced."""
        if self._settled(item_id, result):
            return entry
        return await self.append(item_id, record)

    def _remember(self, item_id: str, head: str, length: Any) -> None:
        self._heads.pop(item_id, None)
        self._heads[item_id] = (head, int(length))
        if len(self._heads) > HEADS_CACHED:
            self._heads.pop(next(iter(self._heads)))

    async def entries(self, item_id: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in await self.redis.lrange(self.key(item_id), 0, -1)]

    async def checked(self, item_id: str) -> tuple[list[dict[str, Any]], Verification]:
        """The entries and their verification against the stored head."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrange(self.key(item_id), 0, -1)
            pipe.hget(f"{self.key(item_id)}:head", "hash")
            raws, head = await pipe.execute()
        entries = [json.loads(raw) for raw in raws]
        stored = head.decode() if isinstance(head, bytes) else head
        return entries, verify(entries, stored if entries else None)
