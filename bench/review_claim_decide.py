"""Review API benchmark: claim + decide cycles with many concurrent reviewers.

100 k review tasks are queued in a fresh Redis; 50 reviewers work them concurrently,
each cycle one claim and one decision (approve). Two scenarios, each on a fresh Tansu
broker and Redis:

- baseline: the bare queue, ``ReviewQueue.claim`` + ``complete`` in-process (no HTTP,
  no auth, no audit, no Kafka);
- review-api: the real service under uvicorn in a subprocess, driven over HTTP (one
  keep-alive connection per reviewer, a minimal client) with bearer tokens; every
  decision is checked, audited (hash chain) and published to Kafka.

The load generator shares the machine's cores with the server. Prints a table and writes
bench/results/review_claim_decide.txt.

    .venv/bin/python bench/review_claim_decide.py [--tasks 100000] [--reviewers 50] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
from common import fresh_stack, quantile, services, write_result
from redis.asyncio import Redis

from hitl_shared.devservers import free_port
from hitl_shared.events import (
    Flag,
    LLMOutput,
    ReviewTask,
    RoutingDecision,
    ScreenedOutput,
    utc_now,
)
from hitl_shared.queue import Reviewer, ReviewQueue, bucket_name, score_for
from hitl_shared.settings import Settings

ADMIN_TOKEN = "bench-admin-token-not-a-secret"  # noqa: S105 - throwaway stack
TEXT = (
    "Thanks for reaching out. Your card 4111 1111 1111 1111 is on file and the refund of "
    "$42.10 will arrive within 5 business days. " * 4
)


def task_payload(n: int) -> tuple[str, int, str]:
    item_id = f"bench-{n}"
    output = LLMOutput(
        item_id=item_id,
        app="support-bot",
        use_case="billing",
        prompt="Where is my refund?",
        model="demo-model-1",
        output_text=TEXT,
        confidence=0.6,
    )
    start = TEXT.index("4111")
    screened = ScreenedOutput(
        item_id=item_id,
        output=output,
        flags=(
            Flag(
                detector="pii",
                category="payment_card",
                severity="critical",
                score=0.99,
                start=start,
                end=start + 19,
                explanation="Luhn-valid card number",
            ),
        ),
    )
    decision = RoutingDecision(
        item_id=item_id,
        app="support-bot",
        use_case="billing",
        tier="medium",
        risk_score=0.5,
        mode="sequential",
        action="hold",
        review_probability=1.0,
        sampled=True,
        rules_fired=("flag:payment_card",),
        policy_version="bench",
    )
    deadline = utc_now() + timedelta(hours=4, seconds=n)
    task = ReviewTask(
        item_id=item_id,
        task_id=f"task-{item_id}",
        tier="medium",
        required_level="L1",
        skills=("general",),
        priority=float(score_for("medium", deadline)),
        sla_deadline=deadline,
        mode="sequential",
        screened=screened,
        decision=decision,
    )
    return task.task_id, score_for("medium", deadline), task.model_dump_json()


async def fill(redis_url: str, namespace: str, tasks: int) -> float:
    """Queue ``tasks`` tasks with pipelined enqueues; returns the payload size in bytes."""
    redis = Redis.from_url(redis_url)
    queue = ReviewQueue(redis, namespace)
    _, base_score, template = task_payload(0)
    bucket = bucket_name("L1", "general", "en")
    try:
        for first in range(0, tasks, 2000):
            async with redis.pipeline(transaction=False) as pipe:
                batch_queue = ReviewQueue(pipe, namespace)  # type: ignore[arg-type]
                for n in range(first, min(first + 2000, tasks)):
                    # one validated task, re-keyed: building 100 k models would dominate
                    payload = template.replace('"bench-0"', f'"bench-{n}"').replace(
                        '"task-bench-0"', f'"task-bench-{n}"'
                    )
                    await batch_queue.enqueue(
                        f"task-bench-{n}", bucket=bucket, score=base_score + n, payload=payload
                    )
                await pipe.execute()
        depth = sum((await queue.depths()).values())
        assert depth == tasks, f"queued {depth} of {tasks}"
    finally:
        await redis.aclose()
    return float(len(template))


class RawHttp:
    """A minimal keep-alive HTTP/1.1 client, one connection per reviewer.

    httpx's pool costs more CPU than the server under 50 concurrent callers on two cores,
    so the load generator would measure itself; this costs a few microseconds a request.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length) if length else b""

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def percentile(values: list[float], q: float) -> float:
    return quantile(values, q) if values else float("nan")


async def drive(
    reviewers: int,
    seconds: float,
    cycle: Callable[[int], Awaitable[bool]],
    think_s: float = 0.0,
) -> dict[str, float]:
    """Closed loop: each reviewer runs cycles back to back, or with ``think_s`` between."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker(n: int) -> None:
        await asyncio.sleep(think_s * n / reviewers)  # spread the paced reviewers
        while time.monotonic() < deadline:
            started = time.perf_counter()
            if not await cycle(n):
                return
            latencies.append((time.perf_counter() - started) * 1000)
            if think_s:
                await asyncio.sleep(think_s)

    started = time.monotonic()
    await asyncio.gather(*(worker(n) for n in range(reviewers)))
    elapsed = time.monotonic() - started
    return {
        "cycles": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": percentile(latencies, 0.99),
    }


async def scenario_bare_queue(settings: Settings, reviewers: int, seconds: float) -> dict[str, Any]:
    redis = Redis.from_url(settings.redis_url, max_connections=reviewers + 8)
    queue = ReviewQueue(redis, settings.redis_prefix)
    people = [Reviewer(f"r{n}", "L1") for n in range(reviewers)]

    async def cycle(n: int) -> bool:
        got = await queue.claim(people[n], lease_seconds=120)
        if got is None:
            return False
        return await queue.complete(got.task_id, people[n].reviewer_id, got.fence)

    try:
        return await drive(reviewers, seconds, cycle)
    finally:
        await redis.aclose()


async def scenario_http(
    settings: Settings, reviewers: int, seconds: float, think_s: float | None, workers: int = 1
) -> dict[str, Any]:
    """Saturated (no think time), then paced reviewers on the same server and queue."""
    port = free_port()
    env = {
        "HITL_ADMIN_TOKEN": ADMIN_TOKEN,
        "HITL_HTTP_PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
    }
    url = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=reviewers + 4, max_keepalive_connections=reviewers + 4)
    claims: list[float] = []
    decides: list[float] = []
    with services(settings, ("hitl_review_api",), env, stop_timeout=20):
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            for _ in range(300):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            tokens = []
            for n in range(reviewers):
                made = await client.post(
                    "/api/reviewers", headers=admin, json={"reviewer_id": f"r{n}", "level": "L1"}
                )
                made.raise_for_status()
                tokens.append(made.json()["token"])

            clients = [RawHttp("127.0.0.1", port, token) for token in tokens]

            async def cycle(n: int) -> bool:
                t0 = time.perf_counter()
                status, raw = await clients[n].post("/api/tasks/claim")
                t1 = time.perf_counter()
                if status != 200:
                    return False
                claim = json.loads(raw)
                body = {"fence": claim["fence"], "verdict": "approve", "labels": ["style"]}
                status, raw = await clients[n].post(
                    f"/api/tasks/{claim['task_id']}/decision", json.dumps(body).encode()
                )
                t2 = time.perf_counter()
                if status != 200:
                    raise RuntimeError(f"decision failed: {status} {raw[:200]!r}")
                claims.append((t1 - t0) * 1000)
                decides.append((t2 - t1) * 1000)
                return True

            try:
                row = await drive(reviewers, seconds, cycle)
                row["claim_p50_ms"] = statistics.median(claims) if claims else float("nan")
                row["claim_p99_ms"] = percentile(claims, 0.99)
                row["decide_p50_ms"] = statistics.median(decides) if decides else float("nan")
                row["decide_p99_ms"] = percentile(decides, 0.99)
                if think_s is not None:
                    row["paced"] = await drive(reviewers, seconds, cycle, think_s)
            finally:
                for one in clients:
                    await one.close()
    return row


async def with_fresh_stack(
    tasks: int, run: Callable[[Settings], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    async with fresh_stack() as settings:
        started = time.monotonic()
        size = await fill(settings.redis_url, settings.redis_prefix, tasks)
        row = await run(settings)
        row["fill_s"] = time.monotonic() - started
        row["payload_bytes"] = size
        return row


LOAD = os.getloadavg()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--reviewers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--think", type=float, default=2.0, help="paced: seconds between cycles")
    args = parser.parse_args()

    base = asyncio.run(
        with_fresh_stack(args.tasks, lambda s: scenario_bare_queue(s, args.reviewers, args.seconds))
    )
    api = asyncio.run(
        with_fresh_stack(
            args.tasks, lambda s: scenario_http(s, args.reviewers, args.seconds, args.think)
        )
    )
    two = asyncio.run(
        with_fresh_stack(
            args.tasks, lambda s: scenario_http(s, args.reviewers, args.seconds, None, workers=2)
        )
    )
    lines = [
        f"{args.tasks} queued tasks ({base['payload_bytes']:.0f} B payload each), "
        f"{args.reviewers} concurrent reviewers, {args.seconds:.0f} s per scenario, "
        "fresh Tansu + Redis per scenario, load generator on the same cores",
        f"machine: {os.cpu_count()} cores, load average before the run {LOAD[0]:.1f}",
        f"{'scenario':<44}{'cycles':>8}{'cycles/s':>10}{'p50 ms':>9}{'p99 ms':>9}",
    ]
    for name, row in (
        ("baseline: bare queue claim+complete", base),
        ("review-api over HTTP: claim+decide", api),
        (f"review-api, paced ({args.think:.0f} s between cycles)", api["paced"]),
        ("review-api, 2 uvicorn workers", two),
    ):
        lines.append(
            f"{name:<44}{row['cycles']:>8.0f}{row['per_s']:>10.1f}"
            f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}"
        )
    lines.append(
        f"review-api split: claim p50 {api['claim_p50_ms']:.1f} / "
        f"p99 {api['claim_p99_ms']:.1f} ms, decide p50 {api['decide_p50_ms']:.1f} / "
        f"p99 {api['decide_p99_ms']:.1f} ms"
    )
    lines.append(
        "a decide = lease check + audit append (hash chain) + Kafka publish (acked) + complete"
    )
    write_result("review_claim_decide", "\n".join(lines))


if __name__ == "__main__":
    main()
