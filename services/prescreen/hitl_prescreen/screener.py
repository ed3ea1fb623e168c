"""The async side of screening: load Redis state, run the pure detectors, learn.

Per batch: each app's anomaly baseline and the edge-case index are fetched (both cached
in the process) within a timeout, the detectors run (inline, or in worker processes
when ``workers`` > 0), and every item's features are added to its app's baseline.
Redis trouble never stops an item: it becomes a detector error and the item goes on,
marked for review.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from hitl_prescreen.baseline_store import BaselineStore
from hitl_prescreen.config import PrescreenConfig
from hitl_prescreen.detectors.anomaly import Baseline
from hitl_prescreen.detectors.edge_cases import EdgeCaseIndex
from hitl_prescreen.edge_case_store import EdgeCaseStore
from hitl_prescreen.workers import Batch, DetectorPool, Judged, judge_batch
from hitl_shared.events import LLMOutput, ScreenedOutput

log = logging.getLogger(__name__)
T = TypeVar("T")


class Screener:
    """One per service process: the configured detectors plus their Redis-backed state."""

    def __init__(
        self, config: PrescreenConfig, redis: Redis, namespace: str, *, workers: int = 0
    ) -> None:
        self.config = config
        self.enabled = config.enabled()
        # detectors for inline screening; worker processes build their own
        self.detectors = config.build() if workers == 0 else {}
        self.baselines = BaselineStore(redis, namespace, timeout_s=config.redis_timeout_s)
        self.edge_cases = EdgeCaseStore(
            redis, namespace, ttl_s=config.detectors.edge_cases.cache_ttl_s
        )
        self.pool = DetectorPool(config, workers) if workers > 0 else None
        self.timings: list[dict[str, float]] | None = None  # benchmarks switch this on

    async def start(self) -> None:
        if self.pool is not None:
            await self.pool.start()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()

    async def _bounded(self, what: str, call: Awaitable[T], errors: list[str]) -> T | None:
        try:
            return await asyncio.wait_for(call, self.config.redis_timeout_s)
        except (TimeoutError, RedisError, OSError) as exc:
            errors.append(f"{what}: state unavailable ({type(exc).__name__}: {exc})"[:300])
            return None

    async def _baseline(self, app: str, errors: list[str]) -> Baseline | None:
        return self.baselines.cached(app) or await self._bounded(
            "anomaly", self.baselines.get(app), errors
        )

    async def _state(self, outputs: Sequence[LLMOutput]) -> tuple[Batch, EdgeCaseIndex | None]:
        """The batch with the state its detectors read; what could not load is an error."""
        apps = sorted({o.app for o in outputs})
        errors: dict[str, list[str]] = {app: [] for app in apps}
        baselines: dict[str, Baseline | None] = dict.fromkeys(apps)
        if "anomaly" in self.enabled:
            found = await asyncio.gather(*(self._baseline(app, errors[app]) for app in apps))
            baselines = dict(zip(apps, found, strict=True))
        index: EdgeCaseIndex | None = None
        if "edge_cases" in self.enabled:
            failed: list[str] = []
            index = self.edge_cases.cached() or await self._bounded(
                "edge_cases", self.edge_cases.index(), failed
            )
            for app in apps:
                errors[app].extend(failed)
        batch = Batch(
            outputs,
            baselines,
            {app: tuple(e) for app, e in errors.items() if e},
            kb_version=self.edge_cases.version if index is not None else -1,
            kb_cases=list(index.cases.values()) if index is not None else (),
            timed=self.timings is not None,
        )
        return batch, index

    async def screen_many(self, outputs: Sequence[LLMOutput]) -> list[ScreenedOutput]:
        """Every output screened, in order; their features then feed the baselines."""
        batch, index = await self._state(outputs)
        judged: list[Judged]
        if self.pool is not None:
            judged = await self.pool.judge(batch)
        else:
            judged = judge_batch(batch, self.detectors, self.config, index)
        for output, result in zip(outputs, judged, strict=True):
            if self.timings is not None and result.timings is not None:
                self.timings.append(result.timings)
            if result.features is not None and batch.baselines.get(output.app) is not None:
                self.baselines.add(output.app, output.item_id, result.features)
        try:
            await self.baselines.flush_if_due()
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("baseline update skipped: %s", exc)
        return [result.verdict.screened(o) for o, result in zip(outputs, judged, strict=True)]

    async def handle(self, output: LLMOutput) -> ScreenedOutput:
        [screened] = await self.screen_many([output])
        return screened
