"""``python -m hitl_feedback.export``: fine-tuning JSONL from the decision topic.

Replays ``review.decisions`` from Kafka (the system of record), finds each item's prompt
(router item record, else the annotation the feedback service kept), and writes SFT or
preference records with a deterministic train/validation split.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from redis.asyncio import Redis

from hitl_feedback.annotations import Annotation, annotate, from_json, prompt_of
from hitl_feedback.datasets import Kind, build, write_split
from hitl_feedback.replay import replay_topic
from hitl_feedback.store import FeedbackStore
from hitl_shared.events import TAXONOMY, ReviewDecision
from hitl_shared.settings import Settings

CHUNK = 500


async def _prompts(store: FeedbackStore, decisions: Sequence[ReviewDecision]) -> list[str | None]:
    """Prompt per decision: the router's item record first, then the kept annotation."""
    found: list[str | None] = []
    for start in range(0, len(decisions), CHUNK):
        chunk = decisions[start : start + CHUNK]
        async with store.redis.pipeline(transaction=False) as pipe:
            for d in chunk:
                pipe.hget(f"{store.ns}:item:{d.item_id}", "screened")
            screened = await pipe.execute()
        kept = await store.redis.hmget(store.annotations_key, [d.event_id for d in chunk])
        for raw_screened, raw_kept in zip(screened, kept, strict=True):
            prompt = prompt_of(raw_screened)
            if prompt is None and raw_kept:
                prompt = from_json(raw_kept).prompt
            found.append(prompt)
    return found


async def load_annotations(settings: Settings, redis: Redis) -> tuple[list[Annotation], int]:
    """Every decision on the topic, once per event id, annotated with its prompt."""
    decisions, undecodable = await replay_topic(
        settings, settings.topics.review_decisions, TypeAdapter(ReviewDecision)
    )
    unique = list({d.event_id: d for d in decisions}.values())
    prompts = await _prompts(FeedbackStore(redis, settings.redis_prefix), unique)
    return [annotate(d, p) for d, p in zip(unique, prompts, strict=True)], undecodable


async def export_dataset(
    settings: Settings,
    redis: Redis,
    *,
    kind: Kind,
    out: Path,
    since: datetime | None = None,
    app: str | None = None,
    label: str | None = None,
    val_fraction: float = 0.1,
    include_approved: bool = False,
) -> dict[str, Any]:
    annotations, undecodable = await load_annotations(settings, redis)
    records, skipped = build(
        annotations, kind, since=since, app=app, label=label, include_approved=include_approved
    )
    summary: dict[str, Any] = {"kind": kind, "decisions": len(annotations)}
    summary.update(write_split(records, out, val_fraction))
    summary.update(skipped=skipped, undecodable=undecodable)
    return summary


def _since(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _fraction(value: str) -> float:
    fraction = float(value)
    if not 0.0 <= fraction < 1.0:
        raise argparse.ArgumentTypeError("--val-fraction must be in [0, 1)")
    return fraction


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="python -m hitl_feedback.export", description=__doc__.splitlines()[0]
    )
    made.add_argument("--kind", choices=["sft", "preference"], required=True)
    made.add_argument("--out", type=Path, required=True, help="train JSONL (val: NAME.val.jsonl)")
    made.add_argument("--since", type=_since, help="only decisions at or after this ISO time")
    made.add_argument("--app", help="only this app")
    made.add_argument("--label", choices=TAXONOMY, help="only items with this taxonomy label")
    made.add_argument("--val-fraction", type=_fraction, default=0.1)
    made.add_argument(
        "--include-approved",
        action="store_true",
        help="SFT: also use outputs approved unchanged as demonstrations",
    )
    return made


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(service_name="feedback-export")
    redis = Redis.from_url(settings.redis_url)
    try:
        return await export_dataset(
            settings,
            redis,
            kind=args.kind,
            out=args.out,
            since=args.since,
            app=args.app,
            label=args.label,
            val_fraction=args.val_fraction,
            include_approved=args.include_approved,
        )
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    print(json.dumps(asyncio.run(_run(parser().parse_args(argv))), indent=2))


if __name__ == "__main__":
    main()
