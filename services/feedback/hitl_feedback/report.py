"""``python -m hitl_feedback.report``: feedback metrics and prompt A/B from the command line.

``metrics`` prints the dashboard snapshot; ``ab`` compares two prompt-template versions
(from the service's Redis state, or ``--source kafka`` to replay the decision topic).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from redis.asyncio import Redis

from hitl_feedback.ab import compare_prompt_versions
from hitl_feedback.export import load_annotations
from hitl_feedback.queries import metrics_snapshot
from hitl_feedback.store import FeedbackStore
from hitl_shared.settings import Settings

FILTERS = ("app", "use_case", "tier", "model", "prompt_template_id", "prompt_version", "reviewer")


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="python -m hitl_feedback.report", description=__doc__.splitlines()[0]
    )
    commands = made.add_subparsers(dest="command", required=True)
    metrics = commands.add_parser("metrics", help="print the metrics snapshot as JSON")
    for name in FILTERS:
        metrics.add_argument(f"--{name.replace('_', '-')}", dest=name)
    metrics.add_argument("--since", help="ISO time, inclusive")
    metrics.add_argument("--until", help="ISO time, exclusive")
    ab = commands.add_parser("ab", help="compare two prompt-template versions")
    ab.add_argument("--a", required=True, help="version A (e.g. the current one)")
    ab.add_argument("--b", required=True, help="version B (the candidate)")
    ab.add_argument("--template-id", help="prompt template id both versions belong to")
    ab.add_argument("--app")
    ab.add_argument("--use-case", dest="use_case")
    ab.add_argument("--since")
    ab.add_argument("--alpha", type=float, default=0.05)
    ab.add_argument("--min-items", type=int, default=20)
    ab.add_argument("--source", choices=["redis", "kafka"], default="redis")
    return made


async def run(args: argparse.Namespace, settings: Settings, redis: Redis) -> dict[str, Any]:
    if args.command == "metrics":
        filters = {k: getattr(args, k) for k in (*FILTERS, "since", "until")}
        return await metrics_snapshot(
            redis, settings.redis_prefix, **{k: v for k, v in filters.items() if v}
        )
    if args.source == "kafka":
        annotations, _ = await load_annotations(settings, redis)
    else:
        annotations = await FeedbackStore(redis, settings.redis_prefix).annotations()
    extra = {k: getattr(args, k) for k in ("app", "use_case", "since") if getattr(args, k)}
    return compare_prompt_versions(
        annotations,
        args.a,
        args.b,
        template_id=args.template_id,
        alpha=args.alpha,
        min_items=args.min_items,
        **extra,
    )


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(service_name="feedback-report")
    redis = Redis.from_url(settings.redis_url)
    try:
        return await run(args, settings, redis)
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    result = asyncio.run(_main(args))
    if args.command == "ab":
        print(result["verdict"])
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
