"""A batch hop whose records are handled together, for one Redis round trip per batch.

``BatchHop`` awaits its handler record by record, so a handler that talks to Redis pays
one round trip per record. ``BulkHop`` keeps everything else of the shared hop (raw
decoding, dead letters, one span per record parented on its trace context, publish
without waiting, await every ack, then commit) and hands the decoded batch to a bulk
handler that pipelines its Redis calls. A record the bulk handler could not handle goes
through the ordinary per-record path (bounded retries, then its dead letter);
infrastructure errors still nack the whole batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from pydantic import ValidationError

from hitl_shared.kafka import INFRASTRUCTURE_ERRORS, BatchHop, Outgoing
from hitl_shared.telemetry import ATTR_ITEM_ID, context_from_headers, item_scope

log = logging.getLogger("hitl.router.bulk")

BulkResult = Sequence[Outgoing] | BaseException
BulkHandler = Callable[[list[Any], list[Span]], Awaitable[list[BulkResult]]]


class BulkHop(BatchHop):
    def __init__(self, *args: Any, bulk: BulkHandler, **kwargs: Any) -> None:
        self.bulk = bulk
        super().__init__(*args, **kwargs)

    def _span(self, record: ConsumerRecord[Any, Any], event: Any) -> Span:
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.destination.name": self.topic,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.consumer.group.name": self.group_id,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
        }
        item_id = getattr(event, "item_id", None)
        if item_id:
            attributes[ATTR_ITEM_ID] = item_id
        return self.tracer.start_span(
            f"{self.topic} process",
            context=context_from_headers(record.headers),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )

    async def _consume(self, bodies: list[bytes], message: KafkaMessage) -> None:
        raw = message.raw_message
        records: tuple[ConsumerRecord[Any, Any], ...] = raw if isinstance(raw, tuple) else (raw,)
        self.metrics.batch(len(records))
        pending: list[asyncio.Future[Any]] = []
        decoded: list[tuple[ConsumerRecord[Any, Any], Any]] = []
        for record in records:
            try:
                decoded.append((record, self.decoder.validate_json(record.value or b"")))
            except (ValidationError, ValueError, RecursionError):
                pending.extend(await self._handle_record(record))  # dead-letters it
        spans = [self._span(record, event) for record, event in decoded]
        try:
            results: list[BulkResult | None] = list(
                await self.bulk([event for _, event in decoded], spans)
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
        if pending:
            await asyncio.gather(*pending)
