"""App side of the prompt registry: which version to use, cached, and stamping outputs.

The catalog fetches a template's serving state (production version, running A/B split)
from the review API at most once per ``ttl_s`` and picks the version for each request
key locally with the same hash the registry uses, so a request costs no round trip and
a reviewed promotion reaches every app within one TTL. When a refresh fails the last
known state keeps serving (stale beats down); with nothing cached the error is raised.
``stamp`` writes the template id and version onto an output, so every submitted output
names the prompt that produced it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from hitl_shared.events import LLMOutput
from hitl_shared.prompts import Rendered, Serving, TemplateVersion, render

log = logging.getLogger("hitl.prompt_catalog")

Fetch = Callable[[str], Awaitable[Serving]]
Clock = Callable[[], float]
Output = TypeVar("Output", LLMOutput, dict[str, Any])


class CatalogError(RuntimeError):
    """The registry could not be reached and no earlier state is cached."""


def http_fetcher(base_url: str, token: str, *, timeout_s: float = 5.0) -> Fetch:
    """Fetch ``/api/prompts/<id>/serving`` with the standard library (no extra package)."""

    def get(template_id: str) -> Serving:
        quoted = urllib.parse.quote(template_id, safe="")
        url = f"{base_url.rstrip('/')}/api/prompts/{quoted}/serving"
        if not url.startswith(("http://", "https://")):
            raise CatalogError(f"registry URL must be http(s): {base_url!r}")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return Serving.model_validate(json.loads(response.read()))

    async def fetch(template_id: str) -> Serving:
        return await asyncio.to_thread(get, template_id)

    return fetch


@dataclass
class _Entry:
    serving: Serving
    fetched_at: float


class PromptCatalog:
    """Cached serving state per template; ``version_for`` / ``render`` per request key."""

    def __init__(self, fetch: Fetch, *, ttl_s: float = 30.0, clock: Clock = time.monotonic):
        if ttl_s < 0:
            raise ValueError("ttl_s must not be negative")
        self._fetch = fetch
        self.ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0

    @classmethod
    def over_http(cls, base_url: str, token: str, *, ttl_s: float = 30.0) -> PromptCatalog:
        return cls(http_fetcher(base_url, token), ttl_s=ttl_s)

    def invalidate(self, template_id: str | None = None) -> None:
        if template_id is None:
            self._cache.clear()
        else:
            self._cache.pop(template_id, None)

    async def serving(self, template_id: str) -> Serving:
        entry = self._cache.get(template_id)
        if entry is not None and self._clock() - entry.fetched_at < self.ttl_s:
            return entry.serving
        lock = self._locks.setdefault(template_id, asyncio.Lock())
        async with lock:  # one refresh per template, however many requests wait on it
            entry = self._cache.get(template_id)
            if entry is not None and self._clock() - entry.fetched_at < self.ttl_s:
                return entry.serving
            try:
                fresh = await self._fetch(template_id)
            except Exception as exc:
                if entry is None:
                    raise CatalogError(f"cannot fetch template {template_id!r}: {exc}") from exc
                log.warning("refreshing %s failed (%s); serving the cached state", template_id, exc)
                self._cache[template_id] = _Entry(entry.serving, self._clock())
                return entry.serving
            self.fetches += 1
            self._cache[template_id] = _Entry(fresh, self._clock())
            return fresh

    async def version_for(self, template_id: str, key: str | None = None) -> TemplateVersion:
        """Production, or the A/B arm ``key`` falls into while an experiment runs."""
        return (await self.serving(template_id)).version_for(key)

    async def render(
        self, template_id: str, values: Mapping[str, object], *, key: str | None = None
    ) -> Rendered:
        return render(await self.version_for(template_id, key), values)


def stamp(
    output: Output, source: Rendered | TemplateVersion, *, set_prompt: bool = False
) -> Output:
    """The output with ``prompt_template_id`` / ``_version`` (and the prompt text) set."""
    fields: dict[str, Any] = {
        "prompt_template_id": source.template_id,
        "prompt_template_version": source.version,
    }
    if set_prompt and isinstance(source, Rendered):
        fields["prompt"] = source.text
    if isinstance(output, LLMOutput):
        return output.model_copy(update=fields)
    return {**output, **fields}
