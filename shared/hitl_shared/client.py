"""Thin app-side client: publish LLM outputs, optionally wait for their release.

Apps call ``submit`` for every model answer. With ``wait=True`` the caller waits (the
event loop does not) until the router releases the item or ``timeout`` passes. One
background consumer per client reads ``llm.released`` from the latest offsets without a
consumer group, so every app replica sees every release; it is positioned before the
first publish, so a fast release cannot slip past it. Publishing is at-least-once:
resubmitting an item id is safe, the pipeline releases each item once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import SpanKind, TracerProvider
from pydantic import BaseModel, ValidationError

from hitl_shared.events import (
    RELEASED_ADAPTER,
    LLMOutput,
    Release,
    Retraction,
    TaxonomyLabel,
    UserFeedback,
)
from hitl_shared.settings import Settings
from hitl_shared.telemetry import ATTR_APP, ATTR_ITEM_ID, current_trace_headers

log = logging.getLogger("hitl.client")

SubmitStatus = Literal[
    "submitted", "auto_released", "approved", "edited", "rejected", "blocked", "timeout"
]
Signal = Literal["regenerate", "copy", "abandon", "thumbs_up", "thumbs_down"]
EventKind = Literal["release", "retraction"]


class InvalidEventError(ValueError):
    """An output or feedback the pipeline would reject; the message names each field."""

    def __init__(self, what: str, exc: ValidationError) -> None:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        super().__init__(f"invalid {what}: {problems}")
        self.errors = exc.errors()


class ClientNotStartedError(RuntimeError):
    """The client is used outside ``async with`` / before ``start()`` or after ``close()``."""


class TopicMissingError(RuntimeError):
    """The released topic does not exist yet: the stack has not created its topics."""


@dataclass(frozen=True)
class SubmitResult:
    """What happened to one submitted output, in a form an app can branch on.

    ``status`` is the release outcome, ``"submitted"`` for fire-and-forget, or
    ``"timeout"`` when no release came in time (the item may still be released later:
    ``wait_for`` picks it up). ``text`` is what the app may show, None until released.
    """

    item_id: str
    status: SubmitStatus
    text: str | None = None
    release: Release | None = None
    trace_id: str | None = None
    waited_s: float = 0.0

    @property
    def released(self) -> bool:
        return self.release is not None

    @property
    def timed_out(self) -> bool:
        return self.status == "timeout"

    def text_or(self, fallback: str) -> str:
        """The released text, or the app's own fallback when nothing was released."""
        return self.text if self.text is not None else fallback


def _validate(model: type[BaseModel], what: str, value: Any) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise InvalidEventError(what, exc) from exc


def _trace_headers() -> list[tuple[str, bytes]]:
    headers = [("content-type", b"application/json")]
    headers.extend((k, v.encode()) for k, v in current_trace_headers().items())
    return headers


class _Waiter:
    """One future per item id, shared by every caller waiting on that item."""

    def __init__(self) -> None:
        self.future: asyncio.Future[Release] = asyncio.get_running_loop().create_future()
        self.count = 0


class HitlClient:
    """Async client; use as ``async with HitlClient(Settings()) as hitl: ...``."""

    def __init__(
        self,
        settings: Settings,
        *,
        app: str | None = None,
        tracer_provider: TracerProvider | None = None,
        listen: bool = True,
        client_id: str = "hitl-client",
        remember: int = 10_000,
    ) -> None:
        self.settings = settings
        self.app = app
        self.listen = listen
        self.client_id = client_id
        self._remember_max = remember
        provider = tracer_provider or trace.get_tracer_provider()
        self._tracer = provider.get_tracer("hitl.client")
        self._producer: Any = None
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: dict[str, _Waiter] = {}
        # items submitted by this client -> their release once seen (None before)
        self._recent: OrderedDict[str, Release | None] = OrderedDict()

    async def __aenter__(self) -> HitlClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect the producer and, when listening, pin the release consumer's position."""
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            client_id=self.client_id,
            enable_idempotence=False,  # the local broker cannot; item ids make resends safe
            acks="all",
            linger_ms=0,
        )
        await producer.start()
        self._producer = producer
        if self.listen:
            try:
                self._consumer = await _pinned_consumer(
                    self.settings, self.settings.topics.llm_released, self.client_id
                )
            except BaseException:
                await self.close()
                raise
            self._task = asyncio.create_task(self._listen(), name="hitl-client-releases")

    async def close(self) -> None:
        """Stop consuming and publishing; callers still waiting get ClientNotStartedError."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for waiter in self._waiters.values():
            if not waiter.future.done():
                waiter.future.set_exception(ClientNotStartedError("client closed"))
        self._waiters.clear()
        consumer, producer, self._consumer, self._producer = (
            self._consumer,
            self._producer,
            None,
            None,
        )
        if consumer is not None:
            await consumer.stop()
        if producer is not None:
            await producer.stop()

    # -- submitting -------------------------------------------------------------------

    def validate(self, output: LLMOutput | Mapping[str, Any]) -> LLMOutput:
        """The output as the pipeline would accept it, or InvalidEventError naming fields."""
        if isinstance(output, LLMOutput):
            return output
        if not isinstance(output, Mapping):
            raise TypeError(f"submit() takes an LLMOutput or a mapping, not {type(output)!r}")
        if self.app is not None and "app" not in output:
            output = {**output, "app": self.app}
        result: LLMOutput = _validate(LLMOutput, "LLM output", output)
        return result

    async def submit(
        self,
        output: LLMOutput | Mapping[str, Any],
        *,
        wait: bool = False,
        timeout: float = 30.0,
    ) -> SubmitResult:
        """Publish one output; with ``wait`` return its release or a timeout result."""
        event = self.validate(output)
        if wait and not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        producer = self._started()
        if wait and self._consumer is None:
            raise ClientNotStartedError("wait=True needs a listening client (listen=True)")
        started = time.monotonic()
        attributes = {ATTR_ITEM_ID: event.item_id, ATTR_APP: event.app}
        topic = self.settings.topics.llm_outputs
        with self._tracer.start_as_current_span(
            f"{topic} publish", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            context = span.get_span_context()
            trace_id = format(context.trace_id, "032x") if context.is_valid else None
            waiter = self._join(event.item_id) if wait else None
            self._note_submitted(event.item_id)
            try:
                await producer.send_and_wait(
                    topic, event.to_bytes(), key=event.item_id.encode(), headers=_trace_headers()
                )
                if waiter is None:
                    return SubmitResult(event.item_id, "submitted", trace_id=trace_id)
                result = await self._await(event.item_id, waiter, timeout, started, trace_id)
            finally:
                if waiter is not None:
                    self._leave(event.item_id, waiter)
            span.set_attribute("hitl.outcome", result.status)
            return result

    async def wait_for(self, item_id: str, *, timeout: float = 30.0) -> SubmitResult:
        """Wait (again) for an item's release, e.g. after a timeout result."""
        if self._consumer is None:
            raise ClientNotStartedError("wait_for needs a started, listening client")
        waiter = self._join(item_id)
        try:
            return await self._await(item_id, waiter, timeout, time.monotonic(), None)
        finally:
            self._leave(item_id, waiter)

    async def _await(
        self, item_id: str, waiter: _Waiter, timeout: float, started: float, trace_id: str | None
    ) -> SubmitResult:
        try:
            release = await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except TimeoutError:
            return SubmitResult(
                item_id, "timeout", trace_id=trace_id, waited_s=time.monotonic() - started
            )
        return SubmitResult(
            item_id,
            release.outcome,
            text=release.text,
            release=release,
            trace_id=trace_id,
            waited_s=time.monotonic() - started,
        )

    def _join(self, item_id: str) -> _Waiter:
        waiter = self._waiters.get(item_id)
        if waiter is None:
            waiter = self._waiters[item_id] = _Waiter()
            if (seen := self._recent.get(item_id)) is not None:
                waiter.future.set_result(seen)
        waiter.count += 1
        return waiter

    def _leave(self, item_id: str, waiter: _Waiter) -> None:
        waiter.count -= 1
        if waiter.count <= 0 and self._waiters.get(item_id) is waiter:
            del self._waiters[item_id]

    def _note_submitted(self, item_id: str) -> None:
        self._recent.setdefault(item_id, None)
        self._recent.move_to_end(item_id)
        while len(self._recent) > self._remember_max:
            self._recent.popitem(last=False)

    def _started(self) -> Any:
        if self._producer is None:
            raise ClientNotStartedError("start the client first: `async with HitlClient(...)`")
        return self._producer

    # -- the release listener ---------------------------------------------------------

    async def _listen(self) -> None:
        consumer = self._consumer
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker may come back; keep the position
                log.warning("reading releases failed (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(0.5)
                continue
            for records in batches.values():
                for record in records:
                    self._on_record(record.key, record.value)

    def _on_record(self, key: bytes | None, value: bytes | None) -> None:
        if key is not None:
            item = key.decode(errors="replace")
            if item not in self._waiters and item not in self._recent:
                return  # someone else's item: skip decoding it
        try:
            event = RELEASED_ADAPTER.validate_json(value or b"")
        except ValidationError as exc:
            log.debug("ignoring an undecodable record on the released topic: %s", exc)
            return
        if not isinstance(event, Release):
            return  # retractions are for subscriptions
        if event.item_id in self._recent:
            self._recent[event.item_id] = event
        waiter = self._waiters.get(event.item_id)
        if waiter is not None and not waiter.future.done():
            waiter.future.set_result(event)

    # -- feedback ---------------------------------------------------------------------

    async def feedback(
        self,
        item_id: str,
        *,
        rating: int | None = None,
        report: TaxonomyLabel | None = None,
        signal: Signal | None = None,
        comment: str | None = None,
        app: str | None = None,
        kind: Literal["explicit", "implicit"] | None = None,
    ) -> UserFeedback:
        """Send an end user's rating / report (explicit) or a behaviour signal (implicit)."""
        if rating is None and report is None and signal is None and comment is None:
            raise ValueError("feedback needs a rating, a report, a signal or a comment")
        app = app or self.app
        if not app:
            raise ValueError("feedback needs the app name: pass app= or HitlClient(app=...)")
        if kind is None:
            explicit = rating is not None or report is not None or comment is not None
            kind = "explicit" if explicit else "implicit"
        event: UserFeedback = _validate(
            UserFeedback,
            "feedback",
            {
                "item_id": item_id,
                "app": app,
                "kind": kind,
                "rating": rating,
                "report": report,
                "signal": signal,
                "comment": comment,
            },
        )
        producer = self._started()
        topic = self.settings.topics.user_feedback
        with self._tracer.start_as_current_span(
            f"{topic} publish",
            kind=SpanKind.PRODUCER,
            attributes={ATTR_ITEM_ID: item_id, ATTR_APP: app},
        ):
            await producer.send_and_wait(
                topic, event.to_bytes(), key=item_id.encode(), headers=_trace_headers()
            )
        return event

    # -- subscriptions ----------------------------------------------------------------

    def subscribe(
        self,
        *,
        app: str | None = None,
        kinds: Collection[EventKind] = ("release", "retraction"),
        group_id: str | None = None,
        start: Literal["latest", "earliest"] = "latest",
    ) -> Subscription:
        """Releases and retractions as an async iterator; see ``Subscription``."""
        return Subscription(
            self.settings,
            app=app if app is not None else self.app,
            kinds=frozenset(kinds),
            group_id=group_id,
            start=start,
            client_id=self.client_id,
        )


async def _pinned_consumer(settings: Settings, topic: str, client_id: str) -> Any:
    """A group-less consumer of every partition, positioned at the end before returning."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        await consumer.topics()  # refreshes metadata
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise TopicMissingError(
                f"topic {topic!r} does not exist on {settings.kafka_bootstrap}; "
                "start the stack (it creates the topics) or call ensure_topics()"
            )
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        for tp in assigned:
            await consumer.position(tp)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


class Subscription:
    """Releases and retractions, positioned on ``__aenter__``.

    Without ``group_id`` it reads every partition from the current end (nothing is
    committed). With ``group_id`` it joins that consumer group and commits only what the
    loop body has finished with (it asked for the next event, or left the ``async with``
    normally): at-least-once across restarts; an exception leaves the event uncommitted.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        app: str | None,
        kinds: frozenset[EventKind],
        group_id: str | None,
        start: Literal["latest", "earliest"],
        client_id: str,
    ) -> None:
        unknown = kinds - {"release", "retraction"}
        if not kinds or unknown:
            raise ValueError(f"kinds must be 'release' and/or 'retraction', got {sorted(kinds)}")
        self.settings = settings
        self.app = app
        self.kinds = kinds
        self.group_id = group_id
        self.start = start
        self.client_id = client_id
        self._consumer: Any = None
        self._done: dict[Any, int] = {}  # partition -> next offset, handled by the body
        self._last: tuple[Any, int] | None = None  # yielded, not yet known to be handled

    async def __aenter__(self) -> Subscription:
        topic = self.settings.topics.llm_released
        if self.group_id is None:
            if self.start == "earliest":
                raise ValueError("start='earliest' needs a group_id (it resumes from commits)")
            self._consumer = await _pinned_consumer(self.settings, topic, self.client_id)
            return self
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.settings.kafka_bootstrap,
            client_id=self.client_id,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self.start,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            session_timeout_ms=self.settings.session_timeout_ms,
            heartbeat_interval_ms=max(100, self.settings.session_timeout_ms // 3),
        )
        await consumer.start()
        self._consumer = consumer
        try:
            await self._await_assignment()
        except BaseException:
            await self.close()
            raise
        return self

    async def _await_assignment(self) -> None:
        deadline = time.monotonic() + 4 * self.settings.session_timeout_ms / 1000
        while not self._consumer.assignment():
            if time.monotonic() > deadline:
                raise TimeoutError(f"group {self.group_id!r} got no partitions")
            await asyncio.sleep(0.05)
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self._last is not None:
            tp, offset = self._last  # the body left the loop normally: it handled this one
            self._done[tp] = offset
        try:
            if exc_type is None:
                await self.commit()
        finally:
            await self.close()

    async def commit(self) -> None:
        """Commit every event the loop body has finished with (group mode only)."""
        if self.group_id is None or not self._done or self._consumer is None:
            return
        offsets, self._done = dict(self._done), {}
        await self._consumer.commit(offsets)

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    def _wanted(self, event: Release | Retraction) -> bool:
        kind: EventKind = "release" if isinstance(event, Release) else "retraction"
        return kind in self.kinds and (self.app is None or event.app == self.app)

    async def __aiter__(self) -> AsyncIterator[Release | Retraction]:
        if self._consumer is None:
            raise ClientNotStartedError("use `async with client.subscribe(...) as events`")
        while self._consumer is not None:
            batches = await self._consumer.getmany(timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    try:
                        event = RELEASED_ADAPTER.validate_json(record.value or b"")
                    except ValidationError:
                        event = None
                    if event is not None and self._wanted(event):
                        self._last = (tp, record.offset + 1)
                        yield event  # the body handles it before asking for the next
                        self._last = None
                    self._done[tp] = record.offset + 1
            await self.commit()
