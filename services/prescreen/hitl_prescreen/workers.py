"""Screening a batch, inline or spread over worker processes.

Detectors are CPU-bound Python, so one process screens on one core. With workers, the
hop's batch is cut into chunks that a process pool screens in parallel; every worker
builds the detectors once from the same config. What a detector reads besides the
output travels with each chunk: the per-app baselines are a few numbers; the edge-case
knowledge base is sent only to a worker that holds an older version of it (the worker
says so and the chunk is sent again with the cases). Inline and pooled screening run
the same ``judge_batch``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from hitl_prescreen.config import PrescreenConfig
from hitl_prescreen.detectors.anomaly import Baseline, features
from hitl_prescreen.detectors.base import Detector, ScreenContext
from hitl_prescreen.detectors.edge_cases import EdgeCase, EdgeCaseIndex
from hitl_prescreen.domain import Verdict, judge
from hitl_shared.events import LLMOutput
from hitl_shared.runtime import freeze_startup_heap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """Outputs to screen plus the state their detectors read."""

    outputs: Sequence[LLMOutput]
    baselines: Mapping[str, Baseline | None] = field(default_factory=dict)  # by app
    load_errors: Mapping[str, Sequence[str]] = field(default_factory=dict)  # by app
    kb_version: int = 0
    kb_cases: Sequence[EdgeCase] | None = ()  # None: not sent (the worker has this version)
    timed: bool = False

    def chunk(self, outputs: Sequence[LLMOutput], *, with_cases: bool) -> Batch:
        apps = {o.app for o in outputs}
        return Batch(
            outputs,
            {app: b for app, b in self.baselines.items() if app in apps},
            {app: e for app, e in self.load_errors.items() if app in apps},
            self.kb_version,
            self.kb_cases if with_cases else None,
            self.timed,
        )


@dataclass(frozen=True)
class Judged:
    """One output's verdict, its anomaly features (for the baseline) and detector times."""

    verdict: Verdict
    features: dict[str, float] | None
    timings: dict[str, float] | None


def judge_batch(
    batch: Batch,
    detectors: Mapping[str, Detector],
    config: PrescreenConfig,
    index: EdgeCaseIndex | None,
) -> list[Judged]:
    """Screen every output of the batch with the given detectors (pure, no I/O)."""
    wants_features = "anomaly" in detectors
    judged = []
    for output in batch.outputs:
        timings: dict[str, float] | None = {} if batch.timed else None
        context = ScreenContext(baseline=batch.baselines.get(output.app), edge_cases=index)
        verdict = judge(
            output,
            detectors,
            context=context,
            budget_ms=config.detector_budget_ms,
            max_chars=config.max_chars,
            timings=timings,
            errors=batch.load_errors.get(output.app, ()),
        )
        values = features(output.output_text) if wants_features else None
        judged.append(Judged(verdict, values, timings))
    return judged


class _WorkerState:
    """What one worker process keeps between chunks: its detectors and its KB copy."""

    def __init__(self, config: PrescreenConfig) -> None:
        self.config = config
        self.detectors = config.build()
        self.kb_version = -1
        self.index: EdgeCaseIndex | None = None


_state: _WorkerState | None = None


def _start_worker(config: PrescreenConfig) -> None:
    global _state
    _state = _WorkerState(config)
    freeze_startup_heap()
    threading.Thread(target=_exit_with_parent, name="parent-watch", daemon=True).start()


def _exit_with_parent() -> None:
    """End this worker when the service process is gone, even killed: the pool's queues
    are shared with the workers, so they would never see an end-of-file and live on."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)


def _ready() -> bool:
    return _state is not None


def _judge_in_worker(batch: Batch) -> list[Judged] | None:
    """The chunk's results, or None when this worker needs the current knowledge base."""
    assert _state is not None, "worker started without its initializer"
    if batch.kb_cases is not None and batch.kb_version != _state.kb_version:
        _state.index = EdgeCaseIndex.build(list(batch.kb_cases))
        _state.kb_version = batch.kb_version
    if batch.kb_version != _state.kb_version:
        return None
    return judge_batch(batch, _state.detectors, _state.config, _state.index)


class DetectorPool:
    """A process pool of ``workers`` screeners; chunks of a batch run side by side.

    A chunk that does not come back within ``worker_timeout_s`` (a detector stuck in a
    loop), or whose worker died, restarts the pool (stuck workers are killed) and its
    items are screened again one at a time; an item that still fails after
    ``ITEM_ATTEMPTS`` tries gets a verdict that marks it for review unscreened. Every item
    comes out, and the hop never waits longer than a few timeouts.
    """

    ITEM_ATTEMPTS = 3
    # what each worker runs first: builds its detectors (tests put a broken one beside them)
    start_worker = staticmethod(_start_worker)
    WARM_UP_TIMEOUT_S = 120.0  # spawning a worker and loading its models, on a busy machine

    def __init__(self, config: PrescreenConfig, workers: int, chunks_per_worker: int = 2) -> None:
        self.config = config
        self.workers = workers
        self.chunks_per_worker = chunks_per_worker
        self._executor = self._new_executor()
        self._warm: asyncio.Future[None] | None = None
        self.restarts = 0

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn, not fork: the service process runs threads (telemetry exporters)
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=self.start_worker,
            initargs=(self.config,),
        )

    async def _warm_up(self, executor: ProcessPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(executor, _ready) for _ in range(self.workers)))

    async def start(self) -> None:
        """Start every worker now (each loads its models), not on the first batch."""
        self._warm = asyncio.ensure_future(self._warm_up(self._executor))
        await self._warm

    def pids(self) -> list[int]:
        """The worker processes' ids (for CPU accounting)."""
        return list(self._executor._processes or ())  # the stdlib keeps them keyed by pid

    def close(self) -> None:
        """Stop the workers now: one stuck in a detector would otherwise hold the exit."""
        self._stop(self._executor)

    @staticmethod
    def _stop(executor: ProcessPoolExecutor) -> None:
        processes = list((executor._processes or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.kill()

    def _restart(self, executor: ProcessPoolExecutor) -> None:
        """Replace a stuck or broken pool (once, whoever notices first)."""
        if self._executor is not executor:
            return
        self._stop(executor)  # a stuck worker would never take another chunk
        self.restarts += 1
        self._executor = self._new_executor()
        self._warm = asyncio.ensure_future(self._warm_up(self._executor))

    async def judge(self, batch: Batch) -> list[Judged]:
        outputs = list(batch.outputs)
        size = max(1, -(-len(outputs) // (self.workers * self.chunks_per_worker)))
        chunks = [outputs[i : i + size] for i in range(0, len(outputs), size)]
        results = await asyncio.gather(*(self._judge_chunk(batch, chunk) for chunk in chunks))
        return [judged for result in results for judged in result]

    async def _judge_chunk(self, batch: Batch, outputs: list[LLMOutput]) -> list[Judged]:
        try:
            return await self._run(batch, outputs)
        except (TimeoutError, BrokenProcessPool) as exc:
            log.error(
                "detector workers %s on a chunk of %d items; pool restarted, screening them "
                "one at a time",
                "timed out" if isinstance(exc, TimeoutError) else "died",
                len(outputs),
            )
        return [await self._judge_alone(batch, output) for output in outputs]

    async def _judge_alone(self, batch: Batch, output: LLMOutput) -> Judged:
        failure = "failed"
        for _ in range(self.ITEM_ATTEMPTS):
            try:
                [judged] = await self._run(batch, [output])
                return judged
            except TimeoutError:
                failure = f"timed out after {self.config.worker_timeout_s:g} s"
            except BrokenProcessPool:  # its worker died, or a stuck sibling's was killed
                failure = "died"
        log.error("item %s not screened: its detector worker %s", output.item_id, failure)
        tries = self.ITEM_ATTEMPTS
        reason = f"prescreen: not screened, its detector worker {failure} ({tries} tries)"
        return Judged(judge(output, {}, errors=[reason]), None, None)

    async def _run(self, batch: Batch, outputs: list[LLMOutput]) -> list[Judged]:
        """One chunk through the current pool, within the timeout; a failure restarts it."""
        loop = asyncio.get_running_loop()
        executor, warm = self._executor, self._warm
        try:
            if warm is not None:  # a new pool loads its models first, outside the chunk's time
                async with asyncio.timeout(self.WARM_UP_TIMEOUT_S):
                    await asyncio.shield(warm)  # shared: a cancelled caller must not stop it
            async with asyncio.timeout(self.config.worker_timeout_s):
                found = await loop.run_in_executor(
                    executor, _judge_in_worker, batch.chunk(outputs, with_cases=False)
                )
                if found is None:  # that worker's knowledge base is older: send it along
                    found = await loop.run_in_executor(
                        executor, _judge_in_worker, batch.chunk(outputs, with_cases=True)
                    )
        except (TimeoutError, BrokenProcessPool):
            self._restart(executor)
            raise
        assert found is not None
        return found
