"""The async side of screening: load Redis state, run the pure detectors, learn.

Per item: the app's anomaly baseline and the edge-case index are fetched (both cached
in the process) within a timeout, the pure ``screen`` runs, and the item's features are
added to the baseline. Redis trouble never stops an item: it becomes a detector error
and the item goes on, marked for review.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from hitl_prescreen.baseline_store import BaselineStore
from hitl_prescreen.config import PrescreenConfig
from hitl_prescreen.detectors.anomaly import Baseline, features
from hitl_prescreen.detectors.base import ScreenContext
from hitl_prescreen.detectors.edge_cases import EdgeCaseIndex
from hitl_prescreen.domain import screen
from hitl_prescreen.edge_case_store import EdgeCaseStore
from hitl_shared.events import LLMOutput, ScreenedOutput

log = logging.getLogger(__name__)
T = TypeVar("T")


class Screener:
    """One per service process: the configured detectors plus their Redis-backed state."""

    def __init__(self, config: PrescreenConfig, redis: Redis, namespace: str) -> None:
        self.config = config
        self.detectors = config.build()
        self.baselines = BaselineStore(redis, namespace, timeout_s=config.redis_timeout_s)
        self.edge_cases = EdgeCaseStore(
            redis, namespace, ttl_s=config.detectors.edge_cases.cache_ttl_s
        )
        self.timings: list[dict[str, float]] | None = None  # benchmarks switch this on

    async def _bounded(self, what: str, call: Awaitable[T], errors: list[str]) -> T | None:
        try:
            return await asyncio.wait_for(call, self.config.redis_timeout_s)
        except (TimeoutError, RedisError, OSError) as exc:
            errors.append(f"{what}: state unavailable ({type(exc).__name__}: {exc})"[:300])
            return None

    async def handle(self, output: LLMOutput) -> ScreenedOutput:
        errors: list[str] = []
        baseline: Baseline | None = None
        index: EdgeCaseIndex | None = None
        if "anomaly" in self.detectors:
            baseline = self.baselines.cached(output.app) or await self._bounded(
                "anomaly", self.baselines.get(output.app), errors
            )
        if "edge_cases" in self.detectors:
            index = self.edge_cases.cached() or await self._bounded(
                "edge_cases", self.edge_cases.index(), errors
            )
        timings: dict[str, float] | None = {} if self.timings is not None else None
        screened = screen(
            output,
            self.detectors,
            context=ScreenContext(baseline=baseline, edge_cases=index),
            budget_ms=self.config.detector_budget_ms,
            max_chars=self.config.max_chars,
            timings=timings,
            errors=errors,
        )
        if self.timings is not None and timings is not None:
            self.timings.append(timings)
        if "anomaly" in self.detectors and baseline is not None:
            try:
                await self.baselines.add(output.app, output.item_id, features(output.output_text))
            except (TimeoutError, RedisError, OSError) as exc:
                log.warning("baseline update for %s skipped: %s", output.app, exc)
        return screened
