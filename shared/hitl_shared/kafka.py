"""Kafka plumbing every service shares: broker factory, topic creation and the batch hop.

The hop is the one way a service consumes a topic. It takes a batch of records,
decodes each one by hand (a bad record is dead-lettered with its raw bytes and the
reason, never failing its batch), runs the domain handler inside a span parented on
the record's trace context, publishes every output without waiting for each ack,
awaits all acks together, and only then lets FastStream commit the batch. An
infrastructure failure (Redis or Kafka unreachable) raises, FastStream seeks back and
the batch is redelivered: at-least-once, with handlers idempotent by ``item_id``.

A hop given a ``bulk`` handler hands it the whole decoded batch at once (one Redis
round trip per batch for the router, detectors spread over worker processes for the
prescreen). A record the bulk handler could not handle goes through the per-record
handler (bounded retries, then its dead letter); infrastructure errors still nack the
whole batch. With ``bulk_slices`` > 1 the batch is cut into that many slices handled
concurrently: while other processes work on one slice (the prescreen's detector
workers), the consumer decodes and publishes another.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Tracer, TracerProvider
from pydantic import BaseModel, TypeAdapter, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hitl_shared.events import DeadLetter
from hitl_shared.metrics import HopMetrics
from hitl_shared.settings import Settings
from hitl_shared.telemetry import (
    consumer_attributes,
    context_from_headers,
    headers_carrier,
    item_scope,
    item_span,
)
from hitl_shared.topics import dead_letter_topic

log = logging.getLogger(__name__)

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    OSError,
    TimeoutError,
    KafkaError,
    RedisConnectionError,
    RedisTimeoutError,
)
MAX_ERROR_TEXT = 2000


@dataclass(frozen=True)
class Outgoing:
    """One event a handler wants published; keyed by item id unless told otherwise."""

    topic: str
    event: BaseModel
    key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Any], Awaitable[Sequence[Outgoing]]]
BulkResult = Sequence[Outgoing] | BaseException
# Every decoded event of a batch and its span -> one result per event, in order.
BulkHandler = Callable[[list[Any], list[Span]], Awaitable[list[BulkResult]]]


def build_broker(settings: Settings, tracer_provider: TracerProvider | None) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=settings.service_name,
        enable_idempotence=False,  # the local broker cannot; handlers are idempotent instead
        linger_ms=2,
        # a dead letter carries the raw record base64-encoded: room for a 1 MiB input
        max_request_size=4 * 1024 * 1024,
        request_timeout_ms=30_000,
        middlewares=(KafkaTelemetryMiddleware(tracer_provider=tracer_provider),),
        logger=logging.getLogger(f"hitl.{settings.service_name}.broker"),
    )


async def ensure_topics(settings: Settings, topics: Sequence[str] | None = None) -> None:
    """Create every topic (with partitions) that does not exist yet."""
    names = list(topics) if topics is not None else settings.topics.all()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(n, num_partitions=settings.partitions, replication_factor=1)
                        for n in missing
                    ]
                )
    finally:
        await admin.close()


def _error_text(exc: BaseException) -> str:
    return str(exc)[:MAX_ERROR_TEXT] or exc.__class__.__name__


def loggable_reason(exc: BaseException) -> str:
    """Why a record failed, without any of its content: logs must not carry PII or secrets.

    The dead letter itself keeps the full message and the raw bytes; a log line only names
    the failing fields and error types (pydantic's text would quote the input).
    """
    if isinstance(exc, ValidationError):
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or '<root>'}: {error['type']}"
            for error in exc.errors(include_input=False, include_url=False)[:5]
        ]
        return "; ".join(problems) or "validation failed"
    return type(exc).__name__


def _item_id_guess(raw: bytes | None) -> str | None:
    """Best-effort item id of an undecodable record, for the dead letter's index."""
    try:
        value = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    item = value.get("item_id") if isinstance(value, dict) else None
    return item[:128] if isinstance(item, str) else None


def dead_letter(
    record: ConsumerRecord[Any, Any], *, service: str, exc: BaseException
) -> DeadLetter:
    raw: bytes = record.value or b""
    key: bytes | None = record.key
    return DeadLetter(
        service=service,
        original_topic=record.topic,
        original_partition=record.partition,
        original_offset=record.offset,
        original_key_b64=base64.b64encode(key).decode() if key is not None else None,
        original_headers=headers_carrier(record.headers),
        raw_b64=base64.b64encode(raw).decode(),
        exc_class=type(exc).__name__,
        exc_msg=_error_text(exc),
        item_id=_item_id_guess(raw),
    )


async def _raw_bodies(message: Any) -> list[bytes]:
    """Skip FastStream's JSON decoding: the hop decodes each record itself."""
    raw = message.raw_message
    records = raw if isinstance(raw, tuple) else (raw,)
    return [record.value or b"" for record in records]


class BatchHop:
    """Registers one batch subscriber: decode, handle (per record or in bulk), publish,
    then commit."""

    def __init__(
        self,
        broker: KafkaBroker,
        settings: Settings,
        tracer: Tracer,
        *,
        topic: str,
        group_id: str,
        decoder: TypeAdapter[Any],
        handler: Handler,
        bulk: BulkHandler | None = None,
        bulk_slices: int = 1,
    ) -> None:
        self.broker = broker
        self.settings = settings
        self.tracer = tracer
        self.topic = topic
        self.decoder = decoder
        self.handler = handler
        self.bulk = bulk
        self.bulk_slices = max(1, bulk_slices)
        self.dead_lettered = 0
        self.handled = 0
        self.group_id = group_id
        self.metrics = HopMetrics(topic, group_id)
        # what the handler holds beyond the broker (the prescreen's worker pool): released
        # by ``close`` when the service stops
        self.on_close: list[Callable[[], object]] = []
        self.subscriber = broker.subscriber(
            topic,
            group_id=group_id,
            batch=True,
            max_records=settings.batch_max_records,
            batch_timeout_ms=settings.fetch_max_wait_ms,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(100, settings.session_timeout_ms // 3),
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            decoder=_raw_bodies,
        )
        self.subscriber(self._consume)

    def close(self) -> None:
        for release in self.on_close:
            release()

    async def _consume(self, bodies: list[bytes], message: KafkaMessage) -> None:
        raw = message.raw_message
        records: tuple[ConsumerRecord[Any, Any], ...] = raw if isinstance(raw, tuple) else (raw,)
        self.metrics.batch(len(records))
        if self.bulk is not None:
            pending = await self._consume_slices(records, self.bulk)
        else:
            pending = []
            for record in records:
                pending.extend(await self._handle_record(record))
        if pending:
            await asyncio.gather(*pending)

    def _span(self, record: ConsumerRecord[Any, Any], event: Any) -> Span:
        """The record's processing span, parented on its trace context, not yet current."""
        item_id = getattr(event, "item_id", None)
        attributes = consumer_attributes(
            self.topic, self.group_id, record.partition, record.offset, item_id
        )
        return self.tracer.start_span(
            f"{self.topic} process",
            context=context_from_headers(record.headers),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )

    async def _consume_slices(
        self, records: Sequence[ConsumerRecord[Any, Any]], bulk: BulkHandler
    ) -> list[asyncio.Future[Any]]:
        """The batch in ``bulk_slices`` concurrent slices; one failing cancels the rest."""
        size = -(-len(records) // self.bulk_slices)
        if size >= len(records):
            return await self._consume_bulk(records, bulk)
        tasks = [
            asyncio.ensure_future(self._consume_bulk(records[i : i + size], bulk))
            for i in range(0, len(records), size)
        ]
        try:
            done = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [future for part in done for future in part]

    async def _consume_bulk(
        self, records: Sequence[ConsumerRecord[Any, Any]], bulk: BulkHandler
    ) -> list[asyncio.Future[Any]]:
        pending: list[asyncio.Future[Any]] = []
        decoded: list[tuple[ConsumerRecord[Any, Any], Any]] = []
        for record in records:
            try:
                decoded.append((record, self.decoder.validate_json(record.value or b"")))
            except (ValidationError, ValueError, RecursionError):
                pending.extend(await self._handle_record(record))  # dead-letters it
        if not decoded:
            return pending
        spans = [self._span(record, event) for record, event in decoded]
        try:
            results: list[BulkResult | None] = list(
                await bulk([event for _, event in decoded], spans)
            )
        except INFRASTRUCTURE_ERRORS as exc:
            log.error("%s unreachable while handling %s: %s", type(exc).__name__, self.topic, exc)
            for span in spans:
                span.record_exception(exc)
                span.end()
            await asyncio.sleep(1.0)
            raise
        except Exception:
            log.exception("bulk handling of %d records failed; one by one instead", len(decoded))
            results = [None] * len(decoded)
        for (record, event), span, result in zip(decoded, spans, results, strict=True):
            if result is None or isinstance(result, BaseException):
                span.end()
                pending.extend(await self._handle_record(record))
                continue
            with (
                item_scope(getattr(event, "item_id", None)),
                trace.use_span(span, end_on_exit=True),
            ):
                self.handled += 1
                self.metrics.handled(event, result)
                pending.extend([await self._publish(out) for out in result])
        return pending

    async def _publish(self, out: Outgoing) -> asyncio.Future[Any]:
        key = out.key if out.key is not None else getattr(out.event, "item_id", None)
        future: asyncio.Future[Any] = await self.broker.publish(
            out.event.model_dump_json().encode(),
            out.topic,
            key=key.encode() if key else None,
            headers={"content-type": "application/json", **out.headers},
            no_confirm=True,
        )
        return future

    async def _dead_letter(
        self, record: ConsumerRecord[Any, Any], exc: BaseException
    ) -> asyncio.Future[Any]:
        letter = dead_letter(record, service=self.settings.service_name, exc=exc)
        log.warning(
            "dead-lettered %s[%s]@%s: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            letter.exc_class,
            loggable_reason(exc),
        )
        self.dead_lettered += 1
        self.metrics.dead_lettered(letter.exc_class)
        return await self._publish(
            Outgoing(
                topic=dead_letter_topic(record.topic),
                event=letter,
                key=letter.item_id or "",
                headers={
                    "exc_class": letter.exc_class,
                    "exc_msg": letter.exc_msg[:500].encode("ascii", "replace").decode(),
                    "original_topic": record.topic,
                    "service": self.settings.service_name,
                },
            )
        )

    async def _handle_record(self, record: ConsumerRecord[Any, Any]) -> list[asyncio.Future[Any]]:
        try:
            event = self.decoder.validate_json(record.value or b"")
        except (ValidationError, ValueError, RecursionError) as exc:
            return [await self._dead_letter(record, exc)]

        parent = context_from_headers(record.headers)
        with item_span(
            self.tracer,
            f"{self.topic} process",
            parent=parent,
            item_id=getattr(event, "item_id", None),
            topic=self.topic,
            group=self.group_id,
            partition=record.partition,
            offset=record.offset,
        ) as span:
            outputs = await self._run_handler(event, record, span)
            if isinstance(outputs, BaseException):
                return [await self._dead_letter(record, outputs)]
            self.handled += 1
            self.metrics.handled(event, outputs)
            return [await self._publish(out) for out in outputs]

    async def _run_handler(
        self, event: Any, record: ConsumerRecord[Any, Any], span: Any
    ) -> Sequence[Outgoing] | BaseException:
        """Bounded retries for a failing record; infrastructure errors go up (nack)."""
        last: BaseException | None = None
        for attempt in range(1, self.settings.handler_attempts + 1):
            try:
                return await self.handler(event)
            except INFRASTRUCTURE_ERRORS as exc:
                log.error(
                    "%s unreachable while handling %s: %s; batch will be redelivered",
                    type(exc).__name__,
                    record.topic,
                    exc,
                )
                span.record_exception(exc)
                await asyncio.sleep(1.0)
                raise
            except Exception as exc:
                last = exc
                span.record_exception(exc)
                await asyncio.sleep(0.05 * attempt)
        assert last is not None
        return last
