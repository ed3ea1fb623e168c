"""Blocking wrapper of ``HitlClient`` for apps without an event loop (Flask, scripts).

The async client runs on a private event loop in a daemon thread; every method hands
its coroutine to that loop and blocks on the answer, so the one release listener is
shared by every thread of the app.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Mapping
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Literal, TypeVar

from hitl_shared.client import EventKind, HitlClient, Signal, SubmitResult, Subscription
from hitl_shared.events import LLMOutput, Release, Retraction, TaxonomyLabel, UserFeedback
from hitl_shared.settings import Settings

T = TypeVar("T")


class HitlClientSync:
    """``with HitlClientSync(Settings()) as hitl: hitl.submit(output, wait=True)``."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="hitl-client-loop", daemon=True
        )
        self._thread.start()
        try:
            self.client: HitlClient = self._call(self._make(settings, options))
        except BaseException:
            self._stop_loop()
            raise

    @staticmethod
    async def _make(settings: Settings, options: dict[str, Any]) -> HitlClient:
        client = HitlClient(settings, **options)
        await client.start()
        return client

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def __enter__(self) -> HitlClientSync:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_running():
            return
        try:
            self._call(self.client.close(), timeout=30)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def submit(
        self, output: LLMOutput | Mapping[str, Any], *, wait: bool = False, timeout: float = 30.0
    ) -> SubmitResult:
        return self._call(self.client.submit(output, wait=wait, timeout=timeout))

    def wait_for(self, item_id: str, *, timeout: float = 30.0) -> SubmitResult:
        return self._call(self.client.wait_for(item_id, timeout=timeout))

    def feedback(
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
        return self._call(
            self.client.feedback(
                item_id,
                rating=rating,
                report=report,
                signal=signal,
                comment=comment,
                app=app,
                kind=kind,
            )
        )

    def subscribe(
        self,
        *,
        app: str | None = None,
        kinds: tuple[EventKind, ...] = ("release", "retraction"),
        group_id: str | None = None,
        start: Literal["latest", "earliest"] = "latest",
    ) -> SyncSubscription:
        sub = self.client.subscribe(app=app, kinds=kinds, group_id=group_id, start=start)
        return SyncSubscription(self, sub)


class SyncSubscription:
    """Blocking iterator over a ``Subscription``; ``next_event(timeout)`` for polling."""

    def __init__(self, owner: HitlClientSync, sub: Subscription) -> None:
        self._owner = owner
        self._sub = sub
        self._events: Any = None

    def __enter__(self) -> SyncSubscription:
        self._owner._call(self._sub.__aenter__())
        self._events = self._sub.__aiter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        async def stop() -> None:
            if self._next is not None:
                self._next.cancel()
                await asyncio.gather(self._next, return_exceptions=True)
            await self._sub.close()

        self._owner._call(stop())

    def next_event(self, timeout: float | None = None) -> Release | Retraction | None:
        """The next event, or None when ``timeout`` seconds pass without one."""

        async def step() -> Release | Retraction | None:
            try:
                event: Release | Retraction = await asyncio.wait_for(
                    asyncio.shield(self._pending()), timeout
                )
            except TimeoutError:
                return None
            self._next = None
            return event

        return self._owner._call(step())

    _next: asyncio.Future[Release | Retraction] | None = None

    def _pending(self) -> asyncio.Future[Release | Retraction]:
        if self._next is None:
            self._next = asyncio.ensure_future(self._events.__anext__())
        return self._next

    def __iter__(self) -> Iterator[Release | Retraction]:
        while True:
            event = self.next_event()
            if event is not None:
                yield event
