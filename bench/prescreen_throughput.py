"""Prescreen throughput on a real broker, beside a bare passthrough measured in the same run.

Every scenario drains the same preloaded backlog of 2 KB LLM outputs from ``llm.outputs``
to ``llm.screened`` through the shared batch hop in its bulk mode (decode, handle the
batch, publish, await acks, commit), each on a fresh Tansu broker and Redis:

* passthrough: the batch handler wraps each output in an unflagged ScreenedOutput
  (bare consume-decode-publish);
* prescreen inline: the real prescreen wiring (every detector, Redis baseline and a
  200-case edge-case knowledge base) screening in the consumer process;
* prescreen pooled: the same with ``--workers`` detector worker processes.

Also reports per-item detector time (sum over detectors, wall clock inside the service,
and CPU time of the pure ``screen`` in a quiet loop) and each detector's share. Prints a
table and writes bench/results/prescreen_throughput.txt.

    .venv/bin/python bench/prescreen_throughput.py [--items 6000] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "shared"), str(ROOT / "services" / "prescreen")]

from common import fresh_stack, preload, quantile, write_result  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from hitl_prescreen.app import wire  # noqa: E402
from hitl_prescreen.config import load_config  # noqa: E402
from hitl_prescreen.detectors.anomaly import Baseline, features  # noqa: E402
from hitl_prescreen.detectors.base import ScreenContext  # noqa: E402
from hitl_prescreen.detectors.edge_cases import EdgeCase, EdgeCaseIndex  # noqa: E402
from hitl_prescreen.domain import screen  # noqa: E402
from hitl_prescreen.edge_case_store import edge_case_key  # noqa: E402
from hitl_prescreen.evaluate import as_output, load_items  # noqa: E402
from hitl_prescreen.screener import Screener  # noqa: E402
from hitl_shared.events import LLMOutput, ScreenedOutput  # noqa: E402
from hitl_shared.kafka import BatchHop, BulkResult, Outgoing, build_broker  # noqa: E402
from hitl_shared.runtime import freeze_startup_heap  # noqa: E402
from hitl_shared.settings import Settings  # noqa: E402

TEXT_CHARS = 2048
KB_CASES = 200


def outputs_2kb(count: int) -> list[LLMOutput]:
    """Evaluation-set items padded with clean answers to 2 KB, keeping their context."""
    items = load_items()
    fillers = [i["text"] for i in items if i["kind"] in ("clean", "claims")]
    made = []
    for n in range(count):
        item = dict(items[n % len(items)])
        text = item["text"]
        k = n
        while len(text) < TEXT_CHARS:
            k += 7
            text += " " + fillers[k % len(fillers)]
        item.update(id=f"bench-{n}", text=text[:TEXT_CHARS])
        output = as_output(item)
        made.append(output.model_copy(update={"app": f"bench-app-{n % 4}"}))
    return made


def knowledge_base() -> list[EdgeCase]:
    items = load_items()
    return [EdgeCase(f"case-{n}", items[(n * 13) % len(items)]["text"]) for n in range(KB_CASES)]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these live processes (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


async def drain(hop: BatchHop, broker: Any, count: int, pids: list[int]) -> dict[str, float]:
    """Start the hop, wait for ``count`` handled records; rate from first to last."""
    stamps: list[float] = []
    cpu: list[float] = []
    handler, bulk = hop.handler, hop.bulk

    def stamp(n: int) -> None:
        stamps.extend([time.perf_counter()] * n)
        if len(cpu) == 0 or len(stamps) >= count:  # CPU read at the first and the last
            cpu.append(cpu_seconds(pids))

    async def timed(event: Any) -> Any:
        result = await handler(event)
        stamp(1)
        return result

    async def timed_bulk(events: list[Any], spans: list[Any]) -> Any:
        assert bulk is not None
        results = await bulk(events, spans)
        stamp(len(results))
        return results

    hop.handler = timed
    if bulk is not None:
        hop.bulk = timed_bulk
    await broker.start()
    try:
        deadline = time.monotonic() + 170
        while len(stamps) < count and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a counter
            await asyncio.sleep(0.05)
    finally:
        await broker.stop()
    if len(stamps) < 2:
        raise RuntimeError(f"only {len(stamps)} of {count} records handled")
    # from the end of the first batch to the end of the last: items after the first batch
    elapsed = stamps[-1] - stamps[0]
    after_first = len(stamps) - stamps.count(stamps[0])
    return {
        "handled": len(stamps),
        "seconds": elapsed,
        "rate": after_first / elapsed,
        # CPU of the hop's processes per item: what it costs, whatever else loads the machine
        "cpu_ms": (cpu[-1] - cpu[0]) / after_first * 1000,
    }


async def scenario(name: str, outputs: list[LLMOutput], workers: int = 0) -> dict[str, Any]:
    async with fresh_stack(
        topic_prefix=f"bench-{name}.",
        redis_prefix=f"bench-{name}",
        service_name=f"bench-{name}",
    ) as settings:
        redis = Redis.from_url(settings.redis_url)
        try:
            return await _scenario(name, settings, redis, outputs, workers)
        finally:
            await redis.aclose()


async def _scenario(
    name: str, settings: Settings, redis: Redis, outputs: list[LLMOutput], workers: int
) -> dict[str, Any]:
    await preload(
        settings.kafka_bootstrap,
        settings.topics.llm_outputs,
        outputs,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    provider = TracerProvider()
    broker = build_broker(settings, provider)
    pids = [os.getpid()]
    if name == "passthrough":

        async def bare(output: LLMOutput) -> list[Outgoing]:
            screened = ScreenedOutput(item_id=output.item_id, output=output)
            return [Outgoing(settings.topics.llm_screened, screened)]

        async def bare_batch(events: list[LLMOutput], spans: list[Any]) -> list[BulkResult]:
            return [await bare(output) for output in events]

        hop = BatchHop(
            broker,
            settings,
            provider.get_tracer("bench"),
            topic=settings.topics.llm_outputs,
            group_id="bench-passthrough",
            decoder=TypeAdapter(LLMOutput),
            handler=bare,
            bulk=bare_batch,  # the same batch path the prescreen takes
        )
        freeze_startup_heap()  # as the service runtime does once wired
        return await drain(hop, broker, len(outputs), pids)
    kb = {c.case_id: json.dumps({"case_id": c.case_id, "text": c.text}) for c in knowledge_base()}
    await redis.hset(edge_case_key(settings.redis_prefix), mapping=kb)
    hop = await wire(settings, broker, redis, provider, workers=workers)
    freeze_startup_heap()
    screener: Screener = hop.screener  # type: ignore[attr-defined]
    screener.timings = []
    if screener.pool is not None:
        pids += screener.pool.pids()
    try:
        result: dict[str, Any] = await drain(hop, broker, len(outputs), pids)
    finally:
        hop.close()  # as the service runtime does on stop: ends the detector workers
    per_item = [sum(t.values()) for t in screener.timings]
    result["detector_p50_ms"] = statistics.median(per_item)
    result["detector_p99_ms"] = quantile(per_item, 0.99)
    result["per_detector"] = {
        name: (
            statistics.mean(t[name] for t in screener.timings),
            quantile([t[name] for t in screener.timings], 0.99),
        )
        for name in screener.timings[0]
    }
    return result


def detector_cpu(outputs: list[LLMOutput]) -> dict[str, float]:
    """Per-item CPU time of the pure detectors, with a filled baseline and KB."""
    detectors = load_config().build()
    baseline = Baseline()
    for o in outputs[:200]:
        baseline.add(features(o.output_text))
    context = ScreenContext(baseline=baseline, edge_cases=EdgeCaseIndex.build(knowledge_base()))
    for o in outputs[:100]:  # warm caches and lazy imports
        screen(o, detectors, context=context)
    times = []
    for o in outputs:
        started = time.process_time()
        screen(o, detectors, context=context)
        times.append((time.process_time() - started) * 1000)
    return {"p50": statistics.median(times), "p99": quantile(times, 0.99)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=6000)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="detector worker processes"
    )
    parser.add_argument("--rounds", type=int, default=5, help="scenario rounds (medians)")
    args = parser.parse_args()
    outputs = outputs_2kb(args.items)
    size = statistics.mean(len(o.to_bytes()) for o in outputs)
    names = ("passthrough", "inline", "pooled")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(args.rounds):  # interleaved, so a noisy moment hits every scenario
        runs["passthrough"].append(await scenario("passthrough", outputs))
        runs["inline"].append(await scenario("inline", outputs, workers=0))
        runs["pooled"].append(await scenario("pooled", outputs, workers=args.workers))
    cpu = detector_cpu(outputs)
    labels = {
        "passthrough": "passthrough (decode, publish)",
        "inline": "prescreen, detectors inline",
        "pooled": f"prescreen, {args.workers} detector workers",
    }
    lines = [
        f"Prescreen throughput: {args.items} LLM outputs of {TEXT_CHARS} chars "
        f"(~{size / 1024:.1f} KB events), 4 partitions, one consumer, fresh Tansu per "
        f"scenario; medians of {args.rounds} interleaved rounds",
        "",
        f"{'scenario':<36}{'items/s':>9}{'vs pass':>9}{'CPU ms/item':>13}   ratio per round",
    ]
    for name in names:
        rates = [r["rate"] for r in runs[name]]
        ratios = [
            r["rate"] / p["rate"] for r, p in zip(runs[name], runs["passthrough"], strict=True)
        ]
        lines.append(
            f"{labels[name]:<36}{statistics.median(rates):>9.0f}"
            f"{statistics.median(ratios):>9.1%}"
            f"{statistics.median(r['cpu_ms'] for r in runs[name]):>13.3f}   "
            + " ".join(f"{x:.0%}" for x in ratios)
        )
    inline = runs["inline"][-1]
    lines += [
        "(target: prescreen >= 50 % of the passthrough; CPU counts the consumer process and"
        " its workers)",
        "",
        "per-item detector time for 2 KB outputs (target p99 < 5 ms)",
        f"  wall, inside the running service:  p50 {inline['detector_p50_ms']:.2f} ms"
        f"   p99 {inline['detector_p99_ms']:.2f} ms (inline)",
        f"  CPU, pure screen() in a loop:      p50 {cpu['p50']:.2f} ms   p99 {cpu['p99']:.2f} ms",
        "",
        f"{'detector (wall, inline service)':<36}{'mean ms':>9}{'p99 ms':>9}",
    ]
    for name, (mean, p99) in inline["per_detector"].items():
        lines.append(f"  {name:<34}{mean:>9.3f}{p99:>9.3f}")
    lines.append(
        f"\nmachine load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    write_result("prescreen_throughput", "\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
