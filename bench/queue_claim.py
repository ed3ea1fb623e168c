"""Claim latency of the Redis review queue with 1 k, 100 k and 1 M queued tasks.

Each size gets a fresh redis-server, filled with pipelined ``enqueue_many`` calls (the
same Lua enqueue the router uses) across 24 qualification buckets (L1-L3 x four skills
x two languages), all four tiers and spread SLA deadlines. Then reviewers of mixed
levels and skills claim tasks one at a time through ``ReviewQueue.claim`` (one Lua
call: reap expired leases, read the head of up to 12 eligible buckets, lease the best),
timed on the client. A Redis PING round trip in the same process is the floor.
The smallest size is the baseline the others are compared against.

    .venv/bin/python bench/queue_claim.py [--claims 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "shared")]

from common import quantile, write_result  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from hitl_shared.devservers import start_redis  # noqa: E402
from hitl_shared.queue import (  # noqa: E402
    QueuedTask,
    Reviewer,
    ReviewQueue,
    bucket_name,
    score_for,
)

SIZES = (1_000, 100_000, 1_000_000)
LEVELS = ("L1", "L2", "L3")
SKILLS = ("general", "medical", "legal", "finance")
LANGUAGES = ("en", "de")
TIERS = ("low", "medium", "high", "critical")
PAYLOAD = '{"task":"' + "x" * 300 + '"}'
REVIEWERS = (
    Reviewer("r-l1", "L1", languages=("en", "de")),
    Reviewer("r-l2", "L2", skills=("medical", "legal"), languages=("en", "de")),
    Reviewer("r-l3", "L3", skills=("finance",), languages=("en",)),
)


def tasks(count: int, seed: int = 7) -> list[QueuedTask]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    made = []
    for n in range(count):
        deadline = now + timedelta(minutes=rng.uniform(-60, 24 * 60))
        made.append(
            QueuedTask(
                f"task-{n}",
                bucket_name(rng.choice(LEVELS), rng.choice(SKILLS), rng.choice(LANGUAGES)),
                score_for(rng.choice(TIERS), deadline),
                PAYLOAD,
            )
        )
    return made


async def measure(size: int, claims: int) -> dict[str, float]:
    server = start_redis()
    redis = Redis.from_url(server.url)
    try:
        queue = ReviewQueue(redis, "bench")
        started = time.perf_counter()
        added = await queue.enqueue_many(tasks(size), chunk=10_000)
        fill_s = time.perf_counter() - started
        assert added == size
        pings, latencies = [], []
        for n in range(claims):
            t0 = time.perf_counter()
            await redis.ping()
            pings.append(time.perf_counter() - t0)
            reviewer = REVIEWERS[n % len(REVIEWERS)]
            t0 = time.perf_counter()
            got = await queue.claim(reviewer, lease_seconds=600)
            latencies.append(time.perf_counter() - t0)
            assert got is not None
            # give it back (untimed) so the queue keeps its size
            await queue.requeue(got.task_id, reviewer.reviewer_id, got.fence)
        memory = (await redis.info("memory"))["used_memory"]
        return {
            "size": size,
            "fill_s": fill_s,
            "p50_ms": quantile(latencies, 0.5) * 1000,
            "p99_ms": quantile(latencies, 0.99) * 1000,
            "ping_p50_ms": quantile(pings, 0.5) * 1000,
            "mem_mb": memory / 2**20,
        }
    finally:
        await redis.aclose()
        server.stop()


async def main(claims: int) -> str:
    rows = [await measure(size, claims) for size in SIZES]
    base = rows[0]
    lines = [
        f"Review queue claim latency: {claims} claims per size by L1/L2/L3 reviewers "
        f"(3-12 eligible buckets each), fresh redis-server per size",
        "",
        f"{'queued':>9} {'fill s':>7} {'claim p50 ms':>13} {'claim p99 ms':>13} "
        f"{'p99 vs 1k':>10} {'PING p50 ms':>12} {'redis MB':>9}",
    ]
    for row in rows:
        lines.append(
            f"{row['size']:>9} {row['fill_s']:>7.1f} {row['p50_ms']:>13.3f} "
            f"{row['p99_ms']:>13.3f} {row['p99_ms'] / base['p99_ms']:>9.2f}x "
            f"{row['ping_p50_ms']:>12.3f} {row['mem_mb']:>9.0f}"
        )
    ratio = rows[-1]["p99_ms"] / base["p99_ms"]
    p50_ratio = rows[-1]["p50_ms"] / base["p50_ms"]
    lines += [
        "",
        f"1M vs 1k: p50 {p50_ratio:.2f}x, p99 {ratio:.2f}x (target: within 2x)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=2000)
    args = parser.parse_args()
    write_result("queue_claim", asyncio.run(main(args.claims)))
