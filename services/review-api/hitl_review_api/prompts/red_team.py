"""Red-team runs: adversarial inputs through a template version and the real pipeline.

    python -m hitl_review_api.prompts.red_team --app support-bot \\
        --model examples.red_team.fake_model:respond [--version 3] [--wait 120]

Each case of the app's suite is rendered with the chosen version (production unless
told), answered by the given model function, tagged ``metadata["red_team"] = True`` and
submitted through ``HitlClient`` like any output. The summary (flagged, reviewed,
rejected, by category) is read back from the screened, routing and released topics,
so it reports what the pipeline really did, and is kept per template version in Redis.
``--summarize RUN_ID`` recomputes a run's summary later, once reviewers have decided.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis

from hitl_review_api.prompts.store import PromptStore
from hitl_shared.client import HitlClient
from hitl_shared.events import (
    RELEASED_ADAPTER,
    ContextDocument,
    LLMOutput,
    Release,
    RoutingDecision,
    ScreenedOutput,
)
from hitl_shared.prompt_catalog import stamp
from hitl_shared.prompts import RED_TEAM_USE_CASE, TemplateVersion, render
from hitl_shared.settings import Settings

Category = Literal["jailbreak", "injection", "pii_bait", "policy_edge"]
Model = Callable[[str, Mapping[str, object]], str]
SUITES = Path(__file__).resolve().parents[4] / "examples" / "red_team"
REVIEWED_ACTIONS = frozenset({"hold", "release_and_review", "block"})


class Case(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")
    category: Category
    input: str = Field(min_length=1, max_length=20_000)
    context: str | None = Field(default=None, max_length=20_000)
    variables: dict[str, str | int | float | bool] = Field(default_factory=dict)


class Suite(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    app: str = Field(min_length=1, max_length=128)
    template_id: str
    use_case: str = RED_TEAM_USE_CASE
    content_category: str = "general"
    input_variable: str = "question"
    variables: dict[str, str | int | float | bool] = Field(default_factory=dict)
    cases: tuple[Case, ...] = Field(min_length=1)


def load_suite(path: Path) -> Suite:
    suite = Suite.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    ids = [c.id for c in suite.cases]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: case ids must be unique")
    return suite


def suite_path(app: str) -> Path:
    return SUITES / f"{app.replace('-', '_')}.yaml"


def item_id(run_id: str, case: Case) -> str:
    return f"rt-{run_id}-{case.id}"


def build_outputs(
    suite: Suite, version: TemplateVersion, model: Model, run_id: str, model_name: str
) -> list[LLMOutput]:
    """One tagged, stamped output per case (pure apart from the model function)."""
    outputs = []
    for case in suite.cases:
        values = {**suite.variables, **case.variables, suite.input_variable: case.input}
        rendered = render(version, values)
        text = model(rendered.text, case.model_dump())
        context = (
            (ContextDocument(doc_id=f"{case.id}-ctx", text=case.context),) if case.context else ()
        )
        output = LLMOutput(
            item_id=item_id(run_id, case),
            app=suite.app,
            use_case=suite.use_case,
            content_category=suite.content_category,
            prompt=rendered.text,
            model=model_name,
            output_text=text,
            context=context,
            metadata={
                "red_team": True,
                "red_team_run": run_id,
                "red_team_case": case.id,
                "red_team_category": case.category,
            },
        )
        outputs.append(stamp(output, rendered))
    return outputs


class Observed(BaseModel):
    """What the pipeline did with a run's items, read from its topics."""

    screened: dict[str, ScreenedOutput] = Field(default_factory=dict)
    decisions: dict[str, RoutingDecision] = Field(default_factory=dict)
    released: dict[str, Release] = Field(default_factory=dict)
    retracted: set[str] = Field(default_factory=set)


def summarize(
    suite: Suite, run_id: str, version: TemplateVersion, observed: Observed
) -> dict[str, Any]:
    """Flagged, reviewed and rejected counts per category, and each case's fate."""
    by_category: dict[str, Counter[str]] = {}
    outcomes: dict[str, Counter[str]] = {}
    flag_kinds: dict[str, Counter[str]] = {}
    cases = []
    for case in suite.cases:
        key = item_id(run_id, case)
        screened = observed.screened.get(key)
        decision = observed.decisions.get(key)
        release = observed.released.get(key)
        flags = sorted({f.category for f in screened.flags}) if screened else []
        retracted = key in observed.retracted
        outcome = release.outcome if release else ("retracted" if retracted else "pending")
        reviewed = decision is not None and decision.action in REVIEWED_ACTIONS
        counts = by_category.setdefault(case.category, Counter())
        counts["total"] += 1
        counts["flagged"] += bool(flags)
        counts["reviewed"] += reviewed
        counts["rejected"] += outcome in ("rejected", "blocked", "retracted")
        outcomes.setdefault(case.category, Counter())[outcome] += 1
        flag_kinds.setdefault(case.category, Counter()).update(flags)
        cases.append(
            {
                "case": case.id,
                "category": case.category,
                "item_id": key,
                "flags": flags,
                "action": decision.action if decision else None,
                "tier": decision.tier if decision else None,
                "outcome": outcome,
            }
        )
    totals: Counter[str] = Counter()
    for counts in by_category.values():
        totals.update(counts)
    return {
        "run_id": run_id,
        "app": suite.app,
        "template_id": version.template_id,
        "version": version.version,
        "summarized_at": datetime.now(UTC).isoformat(),
        "totals": {"total": 0, "flagged": 0, "reviewed": 0, "rejected": 0, **totals},
        "by_category": {
            name: {
                "total": counts["total"],
                "flagged": counts["flagged"],
                "reviewed": counts["reviewed"],
                "rejected": counts["rejected"],
                "outcomes": dict(sorted(outcomes[name].items())),
                "flags": dict(sorted(flag_kinds[name].items())),
            }
            for name, counts in sorted(by_category.items())
        },
        "pending": sum(1 for c in cases if c["outcome"] == "pending"),
        "escaped_review": [c["case"] for c in cases if c["action"] == "release"],
        "cases": cases,
    }


def _done(observed: Observed, wanted: set[str]) -> bool:
    finished = set(observed.released) | observed.retracted
    return wanted <= finished


async def observe(
    settings: Settings, wanted: set[str], *, since_ms: int, wait_s: float
) -> Observed:
    """Read the run's items from the screened, routing and released topics from ``since_ms``."""
    topics = settings.topics
    names = (topics.llm_screened, topics.routing_decisions, topics.llm_released)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    observed = Observed()
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(name, p)
            for name in names
            for p in consumer.partitions_for_topic(name) or ()
        ]
        consumer.assign(partitions)
        starts = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
        for tp in partitions:
            found = starts.get(tp)
            if found is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, found.offset)
        deadline = time.monotonic() + wait_s
        while not _done(observed, wanted) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    key = (record.key or b"").decode(errors="replace")
                    if key in wanted:
                        _note(observed, tp.topic, names, record.value or b"")
    finally:
        await consumer.stop()
    return observed


def _note(observed: Observed, topic: str, names: Sequence[str], value: bytes) -> None:
    try:
        if topic == names[0]:
            screened = ScreenedOutput.model_validate_json(value)
            observed.screened[screened.item_id] = screened
        elif topic == names[1]:
            decision = RoutingDecision.model_validate_json(value)
            observed.decisions.setdefault(decision.item_id, decision)
        else:
            event = RELEASED_ADAPTER.validate_json(value)
            if isinstance(event, Release):
                observed.released.setdefault(event.item_id, event)
            else:
                observed.retracted.add(event.item_id)
    except ValidationError:
        return


def load_model(spec: str) -> Model:
    """``package.module:function`` -> the function (the example's canned model)."""
    module, _, name = spec.partition(":")
    found = getattr(importlib.import_module(module), name or "respond")
    if not callable(found):
        raise TypeError(f"{spec} is not callable")
    return found  # type: ignore[no-any-return]


async def _version(store: PromptStore, suite: Suite, version: str | None) -> TemplateVersion:
    state = await store.get(suite.template_id)
    if state is None:
        raise SystemExit(f"no template {suite.template_id!r} in the registry")
    if version is None:
        if state.production is None:
            raise SystemExit(f"{suite.template_id} has no production version; pass --version")
        return state.production
    if version not in state.versions:
        raise SystemExit(f"{suite.template_id} has no version {version!r}")
    return state.versions[version]


async def run(
    settings: Settings,
    redis: Redis,
    suite: Suite,
    model: Model,
    *,
    version: str | None = None,
    wait_s: float = 60.0,
    run_id: str | None = None,
    model_name: str = "red-team-model",
) -> dict[str, Any]:
    """Submit the suite, wait up to ``wait_s`` for the pipeline, keep and return the summary."""
    store = PromptStore(redis, settings.redis_prefix)
    chosen = await _version(store, suite, version)
    run_id = run_id or secrets.token_hex(4)
    outputs = build_outputs(suite, chosen, model, run_id, model_name)
    started_ms = int(time.time() * 1000) - 1000
    async with HitlClient(settings, app=suite.app, listen=False, client_id="red-team") as client:
        for output in outputs:
            await client.submit(output)
    summary = await collect(settings, redis, suite, chosen, run_id, started_ms, wait_s)
    return summary


async def collect(
    settings: Settings,
    redis: Redis,
    suite: Suite,
    version: TemplateVersion,
    run_id: str,
    started_ms: int,
    wait_s: float,
) -> dict[str, Any]:
    wanted = {item_id(run_id, c) for c in suite.cases}
    observed = await observe(settings, wanted, since_ms=started_ms, wait_s=wait_s)
    summary = {
        **summarize(suite, run_id, version, observed),
        "started_ms": started_ms,
        "started_at": datetime.fromtimestamp(started_ms / 1000, UTC).isoformat(),
    }
    await PromptStore(redis, settings.redis_prefix).save_red_team(
        version.template_id, version.version, summary
    )
    return summary


async def resummarize(
    settings: Settings, redis: Redis, suite: Suite, run_id: str, wait_s: float
) -> dict[str, Any]:
    """Recompute a stored run's summary (e.g. after the reviewers finished)."""
    store = PromptStore(redis, settings.redis_prefix)
    state = await store.get(suite.template_id)
    for version in state.versions.values() if state else ():
        for previous in await store.red_team_runs(suite.template_id, version.version):
            if previous["run_id"] == run_id:
                started = int(previous["started_ms"])
                return await collect(settings, redis, suite, version, run_id, started, wait_s)
    raise SystemExit(f"no red-team run {run_id!r} for {suite.template_id}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hitl_review_api.prompts.red_team")
    p.add_argument("--app", required=True, help="the app whose suite to run, e.g. support-bot")
    p.add_argument("--suite", type=Path, help="suite YAML (default: examples/red_team/<app>.yaml)")
    p.add_argument(
        "--model",
        default="examples.red_team.fake_model:respond",
        help="module:function answering (prompt, case) -> text",
    )
    p.add_argument("--version", help="template version (default: production)")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for outcomes")
    p.add_argument("--run-id", help="run id (default: random)")
    p.add_argument("--summarize", metavar="RUN_ID", help="recompute a run's summary only")
    return p


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(service_name="red-team")
    suite = load_suite(args.suite or suite_path(args.app))
    if suite.app != args.app:
        raise SystemExit(f"suite is for {suite.app!r}, not {args.app!r}")
    redis = Redis.from_url(settings.redis_url)
    try:
        if args.summarize:
            return await resummarize(settings, redis, suite, args.summarize, args.wait)
        return await run(
            settings,
            redis,
            suite,
            load_model(args.model),
            version=args.version,
            wait_s=args.wait,
            run_id=args.run_id,
            model_name=args.model,
        )
    finally:
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> None:
    summary = asyncio.run(_main(parser().parse_args(argv)))
    json.dump({k: v for k, v in summary.items() if k != "cases"}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
