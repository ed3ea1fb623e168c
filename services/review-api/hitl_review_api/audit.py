"""Append-only, hash-chained audit trail of every human action on an item.

``{ns}:audit:<item_id>`` is a Redis list of JSON entries. Each entry carries
``prev_hash`` (the previous entry's hash, or 64 zeros) and ``hash`` = sha256(prev_hash +
canonical JSON of the entry without ``hash``). Redis Lua has no SHA-256, so the hash is
computed here and the append is a compare-and-append script that only pushes when the
list's last hash is still the one the entry was chained to; a concurrent writer makes
us re-chain and retry. Editing or deleting any entry afterwards breaks ``verify``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from redis.asyncio import Redis

GENESIS = "0" * 64
MAX_ATTEMPTS = 20

_APPEND = """
local last = redis.call('LINDEX', KEYS[1], -1)
local prev = '0000000000000000000000000000000000000000000000000000000000000000'
if last then prev = cjson.decode(last)['hash'] end
if prev ~= ARGV[1] then return {0, prev} end
redis.call('RPUSH', KEYS[1], ARGV[2])
return {1, prev}
"""


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


def verify(entries: list[dict[str, Any]]) -> Verification:
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
    return Verification(ok=True, entries=len(entries), head=prev)


class AuditLog:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.ns = "{" + namespace + "}"
        self._append = redis.register_script(_APPEND)

    def key(self, item_id: str) -> str:
        return f"{self.ns}:audit:{item_id}"

    async def append(self, item_id: str, record: dict[str, Any]) -> dict[str, Any]:
        """Chain ``record`` after the current head; returns the stored entry."""
        key = self.key(item_id)
        prev = await self._head(key)
        for _ in range(MAX_ATTEMPTS):
            seq = int(await self.redis.llen(key))
            body = {
                **record,
                "item_id": item_id,
                "seq": seq,
                "at": datetime.now(UTC).isoformat(),
                "prev_hash": prev,
            }
            entry = {**body, "hash": entry_hash(prev, body)}
            stored, head = await self._append(keys=[key], args=[prev, canonical(entry)])
            if int(stored) == 1:
                return entry
            prev = head.decode() if isinstance(head, bytes) else str(head)
        raise RuntimeError(f"audit append for {item_id} kept racing; gave up")

    async def _head(self, key: str) -> str:
        last = await self.redis.lindex(key, -1)
        return str(json.loads(last)["hash"]) if last else GENESIS

    async def entries(self, item_id: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in await self.redis.lrange(self.key(item_id), 0, -1)]
