"""Router wiring: screened outputs -> decisions, staged releases and queued review tasks;
review decisions -> staged releases or retractions; policy updates and kill switches ->
live routing inputs. Releases leave through the outbox publisher (ADR 6); a background
loop reloads the policy, refreshes live inputs and escalates overdue tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import timedelta

from faststream.kafka import KafkaBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span
from pydantic import TypeAdapter
from redis.asyncio import Redis

from hitl_router.control import KillSwitch
from hitl_router.domain import Live, decide, task_skill
from hitl_router.outbox import OutboxPublisher
from hitl_router.policy import Policy, PolicySource
from hitl_router.release import auto_release, release_after_review, retraction_after_review
from hitl_router.state import OutboxEntry, RouterStore
from hitl_shared.events import (
    PolicyUpdate,
    Release,
    Retraction,
    ReviewDecision,
    ReviewTask,
    RoutingDecision,
    ScreenedOutput,
)
from hitl_shared.kafka import BatchHop, Outgoing
from hitl_shared.queue import QueuedTask, ReviewQueue, bucket_name, score_for
from hitl_shared.runtime import run_consumer_service
from hitl_shared.settings import Settings
from hitl_shared.telemetry import (
    ATTR_ACTION,
    ATTR_APP,
    ATTR_TIER,
    current_trace_headers,
    item_scope,
)

GROUP_ID = "hitl-router"
HELD = ("hold", "release_and_review", "block")
LIVE_REFRESH_S = 1.0
_TASK_NS = uuid.UUID("3c0e8a1f-7d44-4f59-b0d2-5e6a9c8b2f13")
log = logging.getLogger("hitl.router")
_background: set[asyncio.Task[None]] = set()


def review_task(decision: RoutingDecision, screened: ScreenedOutput, policy: Policy) -> ReviewTask:
    """Deterministic: a redelivered item rebuilds the very same task (SLA from creation)."""
    rule = policy.tiers[decision.tier]
    deadline = screened.output.occurred_at + timedelta(minutes=rule.sla_minutes)
    if decision.action == "block":
        deadline = min(deadline, screened.output.occurred_at + timedelta(minutes=15))
    return ReviewTask(
        event_id=str(uuid.uuid5(_TASK_NS, decision.item_id)),
        # the review API continues the item's trace from here (ADR 8); ignored by
        # event models that do not have the field yet
        trace_context=current_trace_headers(),
        item_id=decision.item_id,
        task_id=f"task-{decision.item_id}",
        tier=decision.tier,
        required_level=decision.required_level,
        skills=(task_skill(screened, decision.tier, policy),),
        language=screened.output.language,
        approvals_required=max(1, decision.approvals_required),
        priority=float(score_for(decision.tier, deadline)),
        sla_deadline=deadline,
        mode=decision.mode,
        screened=screened,
        decision=decision,
    )


def _entry(event: Release | Retraction) -> OutboxEntry:
    return OutboxEntry(
        item_id=event.item_id,
        event_id=event.event_id,
        payload=event.model_dump_json(),
        headers=current_trace_headers(),
    )


class Router:
    """The router's handlers over its Redis state; I/O only, the choices are in domain."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.source = PolicySource(settings.policy_file)
        self.store = RouterStore(redis, settings.redis_prefix)
        self.queue = ReviewQueue(redis, settings.redis_prefix)
        self.live = Live()
        self.escalated = 0
        self.outbox_wakeup = asyncio.Event()

    async def on_screened(self, screened: ScreenedOutput) -> list[Outgoing]:
        """One item (the per-record path of the hop, used when a bulk batch failed)."""
        [result] = await self.route_many([screened], [trace.get_current_span()])
        if isinstance(result, BaseException):
            raise result
        return list(result)

    async def route_many(
        self, items: list[ScreenedOutput], spans: list[Span]
    ) -> list[Sequence[Outgoing] | BaseException]:
        """Decide every item, then record decisions, stage releases and queue tasks in
        pipelined Redis calls; a decision that fails stays with its own item."""
        policy, live = self.source.policy, self.live
        results: list[Sequence[Outgoing] | BaseException] = []
        todo: list[tuple[int, ScreenedOutput, RoutingDecision, OutboxEntry | None]] = []
        for index, (screened, span) in enumerate(zip(items, spans, strict=True)):
            with item_scope(screened.item_id), trace.use_span(span, end_on_exit=False):
                try:
                    decision = decide(screened, policy, live)
                    todo.append((index, screened, decision, self._release_of(decision, screened)))
                    results.append(())
                except Exception as exc:
                    results.append(exc)
        routed = await self.store.route_many([(d, entry) for _, _, d, entry in todo])
        killed = [n for n, r in enumerate(routed) if r.outcome == "killed"]
        if killed:  # switched on since our last refresh: hold these
            self.live = replace(
                self.live, killed=self.live.killed | {todo[n][2].app for n in killed}
            )
            redo = [decide(todo[n][1], policy, self.live) for n in killed]
            again = await self.store.route_many([(d, None) for d in redo])
            for n, decision, result in zip(killed, redo, again, strict=True):
                routed[n] = (
                    result if result.decision is not None else replace(result, decision=decision)
                )
        tasks: list[QueuedTask] = []
        staged = False
        for (index, screened, _, entry), result in zip(todo, routed, strict=True):
            decision = result.decision
            assert decision is not None
            staged = staged or (entry is not None and result.outcome == "new")
            span = spans[index]
            span.set_attribute(ATTR_TIER, decision.tier)
            span.set_attribute(ATTR_ACTION, decision.action)
            span.set_attribute(ATTR_APP, decision.app)
            out = [Outgoing(self.topics.routing_decisions, decision)]
            if decision.action in HELD:
                with trace.use_span(span, end_on_exit=False):
                    task = review_task(decision, screened, policy)
                tasks.append(
                    QueuedTask(
                        task.task_id,
                        bucket_name(task.required_level, task.skills[0], task.language),
                        int(task.priority),
                        task.model_dump_json(),
                        since_ms=int(screened.output.occurred_at.timestamp() * 1000),
                    )
                )
                out.append(Outgoing(self.topics.review_tasks, task))
            results[index] = out
        if tasks:
            await self.queue.enqueue_many(tasks)
        if staged:
            self.outbox_wakeup.set()
        return results

    @staticmethod
    def _release_of(decision: RoutingDecision, screened: ScreenedOutput) -> OutboxEntry | None:
        if decision.action not in ("release", "release_and_review"):
            return None
        return _entry(auto_release(decision, screened.output.output_text))

    async def on_decision(self, verdict: ReviewDecision) -> list[Outgoing]:
        if not verdict.final or verdict.verdict == "escalate":
            return []
        routing = await self.store.routing(verdict.item_id)
        if routing is None:
            raise LookupError(f"no routing record for item {verdict.item_id}")
        fallback = self.source.policy.fallback_for(routing.app)
        if routing.action == "release_and_review":
            retraction = retraction_after_review(routing, verdict, fallback)
            if retraction is not None:
                await self.store.stage("retraction", _entry(retraction))
                self.outbox_wakeup.set()
            return []
        await self.store.stage("release", _entry(release_after_review(routing, verdict, fallback)))
        self.outbox_wakeup.set()
        return []

    async def on_policy_update(self, update: PolicyUpdate) -> list[Outgoing]:
        if await self.store.apply_rate(update):
            self.live = await self.store.live()
        return []

    async def on_control(self, switch: KillSwitch) -> list[Outgoing]:
        if await self.store.set_kill(switch.app, on=switch.on, sequence=switch.sequence):
            log.warning(
                "kill switch for %s turned %s by %s",
                switch.app,
                "on" if switch.on else "off",
                switch.operator,
            )
        self.live = await self.store.live()
        return []

    async def maintain(self, alive: Callable[[], bool]) -> None:
        """Reload the policy, refresh live inputs, escalate overdue tasks."""
        next_sweep = 0.0
        while alive():
            self.source.refresh()
            self.live = await self.store.live()
            policy = self.source.policy
            if time.monotonic() >= next_sweep:
                moved = await self.queue.escalate_overdue(
                    step_ms=int(policy.escalation.step_minutes * 60_000)
                )
                if moved:
                    self.escalated += len(moved)
                    log.info("escalated %d overdue review tasks", len(moved))
                next_sweep = time.monotonic() + policy.escalation.sweep_seconds
            await asyncio.sleep(LIVE_REFRESH_S)


async def _supervise(
    name: str, body: Callable[[Callable[[], bool]], Awaitable[None]], alive: Callable[[], bool]
) -> None:
    """Keep a background loop going while the broker runs; say why it stumbled."""
    while alive():
        try:
            await body(alive)
        except Exception:
            if not alive():
                return
            log.exception("router %s loop failed; restarting in 1s", name)
            await asyncio.sleep(1.0)


async def _run_background(broker: KafkaBroker, router: Router, outbox: OutboxPublisher) -> None:
    while not broker.running:  # noqa: ASYNC110 - the broker offers a flag, not an event
        await asyncio.sleep(0.02)
    router.live = await router.store.live()

    def alive() -> bool:
        return bool(broker.running)

    try:
        await asyncio.gather(
            _supervise("outbox", outbox.run, alive),
            _supervise("maintenance", router.maintain, alive),
        )
    finally:
        with contextlib.suppress(Exception):
            await outbox.release_lock()


async def wire(
    settings: Settings, broker: KafkaBroker, redis: Redis, provider: TracerProvider
) -> list[BatchHop]:
    topics = settings.topics
    tracer = provider.get_tracer("hitl.router")
    router = Router(settings, redis)
    outbox = OutboxPublisher(
        redis,
        settings.redis_prefix,
        topic=topics.llm_released,
        bootstrap=settings.kafka_bootstrap,
        wakeup=router.outbox_wakeup,
        tracer=provider.get_tracer("hitl.router"),
    )
    task = asyncio.create_task(_run_background(broker, router, outbox))
    _background.add(task)
    task.add_done_callback(_background.discard)

    def hop(
        topic: str, group: str, model: type, handler: Callable[..., Awaitable[list[Outgoing]]]
    ) -> BatchHop:
        return BatchHop(
            broker,
            settings,
            tracer,
            topic=topic,
            group_id=group,
            decoder=TypeAdapter(model),
            handler=handler,
        )

    screened = BatchHop(
        broker,
        settings,
        tracer,
        topic=topics.llm_screened,
        group_id=GROUP_ID,
        decoder=TypeAdapter(ScreenedOutput),
        handler=router.on_screened,
        bulk=router.route_many,
    )
    return [
        screened,
        hop(topics.review_decisions, f"{GROUP_ID}-decisions", ReviewDecision, router.on_decision),
        hop(topics.policy_updates, f"{GROUP_ID}-policy", PolicyUpdate, router.on_policy_update),
        hop(topics.control, f"{GROUP_ID}-control", KillSwitch, router.on_control),
    ]


def main() -> None:
    asyncio.run(run_consumer_service(Settings(service_name="router"), wire))


if __name__ == "__main__":
    main()
