"""One running stack (prescreen, router, review API) shared by the client tests.

Starting the services costs several consumer-group joins; the client tests only need
distinct item ids, so they share one stack on its own topic prefix and Redis namespace.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from hitl_shared.settings import Settings
from tests.client.stack import Reviewers, reviewing
from tests.support import isolated_settings


@pytest.fixture(scope="package")
async def stack_settings(kafka_bootstrap: str, redis_url: str) -> Settings:
    return await isolated_settings(kafka_bootstrap, redis_url, f"c{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="package")
async def stack(stack_settings: Settings, redis_url: str) -> AsyncIterator[Reviewers]:
    """The services running, and reviewers working the review API on demand."""
    redis = Redis.from_url(redis_url)
    try:
        async with reviewing(stack_settings, redis) as reviewers:
            yield reviewers
    finally:
        await redis.aclose()
