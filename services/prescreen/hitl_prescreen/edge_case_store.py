"""The edge-case knowledge base, read from the Redis hash the feedback service fills.

``{ns}:kb:edge_cases`` maps case_id -> JSON {"case_id", "text", "labels", "item_id",
"note"}. The index is rebuilt only when the hash changed, and the hash is read at most
once per ``ttl_s``, so the knowledge base costs nothing per item in steady state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from redis.asyncio import Redis

from hitl_prescreen.detectors.edge_cases import EdgeCase, EdgeCaseIndex

log = logging.getLogger(__name__)


def edge_case_key(namespace: str) -> str:
    return "{" + namespace + "}:kb:edge_cases"


def build_index(raw: Mapping[bytes | str, bytes | str]) -> EdgeCaseIndex:
    cases = []
    for case_id, value in raw.items():
        name = case_id.decode(errors="replace") if isinstance(case_id, bytes) else case_id
        case = EdgeCase.from_json(name, value)
        if case is None:
            log.warning("edge case %r is not usable JSON with a text; skipped", case_id[:80])
            continue
        cases.append(case)
    return EdgeCaseIndex.build(cases)


class EdgeCaseStore:
    def __init__(self, redis: Redis, namespace: str, *, ttl_s: float = 5.0) -> None:
        self.redis = redis
        self.key = edge_case_key(namespace)
        self.ttl_s = ttl_s
        self._loaded_at = float("-inf")
        self._raw: Mapping[bytes | str, bytes | str] | None = None
        self._index = EdgeCaseIndex()
        self.version = 0  # goes up whenever the knowledge base changed

    def cached(self) -> EdgeCaseIndex | None:
        """The index if it was read recently enough (no I/O)."""
        if time.monotonic() - self._loaded_at < self.ttl_s:
            return self._index
        return None

    async def index(self) -> EdgeCaseIndex:
        if time.monotonic() - self._loaded_at < self.ttl_s:
            return self._index
        raw = await self.redis.hgetall(self.key)
        if raw != self._raw:
            self._index = build_index(raw)
            self._raw = raw
            self.version += 1
        self._loaded_at = time.monotonic()
        return self._index
