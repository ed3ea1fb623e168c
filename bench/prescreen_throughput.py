"""Prescreen throughput on a real broker, beside a bare passthrough measured in the same run.

Both scenarios drain the same preloaded backlog of 2 KB LLM outputs from ``llm.outputs``
to ``llm.screened`` through the shared batch hop (decode, handle, publish, await acks,
commit), each on a fresh Tansu broker and Redis:

* passthrough: the handler wraps the output in an unflagged ScreenedOutput (bare
  consume-decode-publish);
* prescreen: the real prescreen wiring (every detector, Redis baseline and a 200-case
  edge-case knowledge base).

Also reports per-item detector time (sum over detectors, wall clock inside the service,
and CPU time of the pure ``screen`` in a quiet loop). Prints a table and writes
bench/results/prescreen_throughput.txt.

    .venv/bin/python bench/prescreen_throughput.py [--items 3000]
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
from hitl_shared.events import LLMOutput, ScreenedOutput  # noqa: E402
from hitl_shared.kafka import BatchHop, Outgoing, build_broker  # noqa: E402
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


async def drain(settings: Settings, hop: BatchHop, broker: Any, count: int) -> dict[str, float]:
    """Start the hop, wait for ``count`` handled records; rate from first to last."""
    stamps: list[float] = []
    cpu: list[float] = []
    handler = hop.handler

    async def timed(event: Any) -> Any:
        result = await handler(event)
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())
        return result

    hop.handler = timed
    await broker.start()
    try:
        deadline = time.monotonic() + 170
        while len(stamps) < count and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a counter
            await asyncio.sleep(0.05)
    finally:
        await broker.stop()
    if len(stamps) < 2:
        raise RuntimeError(f"only {len(stamps)} of {count} records handled")
    elapsed = stamps[-1] - stamps[0]
    return {
        "handled": len(stamps),
        "seconds": elapsed,
        "rate": (len(stamps) - 1) / elapsed,
        # CPU of this process per item: what the hop costs, whatever else loads the machine
        "cpu_ms": (cpu[-1] - cpu[0]) / (len(cpu) - 1) * 1000,
    }


async def scenario(name: str, outputs: list[LLMOutput]) -> dict[str, Any]:
    async with fresh_stack(
        topic_prefix=f"bench-{name}.",
        redis_prefix=f"bench-{name}",
        service_name=f"bench-{name}",
    ) as settings:
        redis = Redis.from_url(settings.redis_url)
        try:
            return await _scenario(name, settings, redis, outputs)
        finally:
            await redis.aclose()


async def _scenario(
    name: str, settings: Settings, redis: Redis, outputs: list[LLMOutput]
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
    extra: dict[str, Any] = {}
    if name == "passthrough":

        async def bare(output: LLMOutput) -> list[Outgoing]:
            screened = ScreenedOutput(item_id=output.item_id, output=output)
            return [Outgoing(settings.topics.llm_screened, screened)]

        hop = BatchHop(
            broker,
            settings,
            provider.get_tracer("bench"),
            topic=settings.topics.llm_outputs,
            group_id="bench-passthrough",
            decoder=TypeAdapter(LLMOutput),
            handler=bare,
        )
    else:
        kb = {
            c.case_id: json.dumps({"case_id": c.case_id, "text": c.text}) for c in knowledge_base()
        }
        await redis.hset(edge_case_key(settings.redis_prefix), mapping=kb)
        hop = await wire(settings, broker, redis, provider)
        hop.screener.timings = []  # type: ignore[attr-defined]
        extra["screener"] = hop.screener  # type: ignore[attr-defined]
    result: dict[str, Any] = await drain(settings, hop, broker, len(outputs))
    if "screener" in extra:
        per_item = [sum(t.values()) for t in extra["screener"].timings]
        result["detector_p50_ms"] = statistics.median(per_item)
        result["detector_p99_ms"] = quantile(per_item, 0.99)
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
    parser.add_argument("--items", type=int, default=3000)
    args = parser.parse_args()
    outputs = outputs_2kb(args.items)
    size = statistics.mean(len(o.to_bytes()) for o in outputs)
    passthrough = await scenario("passthrough", outputs)
    prescreen = await scenario("prescreen", outputs)
    cpu = detector_cpu(outputs)
    ratio = prescreen["rate"] / passthrough["rate"]
    cpu_ratio = passthrough["cpu_ms"] / prescreen["cpu_ms"]
    lines = [
        f"Prescreen throughput: {args.items} LLM outputs of {TEXT_CHARS} chars "
        f"(~{size / 1024:.1f} KB events), 4 partitions, one process, fresh Tansu per scenario",
        "",
        f"{'scenario':<34}{'items/s':>10}{'seconds':>9}{'CPU ms/item':>13}",
        f"{'passthrough (decode, publish)':<34}{passthrough['rate']:>10.0f}"
        f"{passthrough['seconds']:>9.2f}{passthrough['cpu_ms']:>13.3f}",
        f"{'prescreen (all detectors, Redis)':<34}{prescreen['rate']:>10.0f}"
        f"{prescreen['seconds']:>9.2f}{prescreen['cpu_ms']:>13.3f}",
        f"{'ratio prescreen / passthrough':<34}{ratio:>10.1%}   (target >= 50 %)",
        f"{'ratio of CPU cost per item':<34}{cpu_ratio:>10.1%}   (load-independent view)",
        "",
        "per-item detector time for 2 KB outputs (target p99 < 5 ms)",
        f"  wall, inside the running service:  p50 {prescreen['detector_p50_ms']:.2f} ms"
        f"   p99 {prescreen['detector_p99_ms']:.2f} ms",
        f"  CPU, pure screen() in a loop:      p50 {cpu['p50']:.2f} ms   p99 {cpu['p99']:.2f} ms",
    ]
    lines.append(
        f"\nmachine load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    write_result("prescreen_throughput", "\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
