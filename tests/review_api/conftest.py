"""Review-api fixtures: the app with its lifespan in-process, and a way to make users."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from hitl_review_api.app import create_app
from hitl_shared.settings import Settings

ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    user: Callable[..., Awaitable[dict[str, str]]]


def with_admin(settings: Settings) -> Settings:
    return settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN), "lease_seconds": 60})


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    configured = with_admin(settings)
    app = create_app(configured)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        )

        async def user(reviewer_id: str, **profile: object) -> dict[str, str]:
            made = await client.post(
                "/api/reviewers", headers=ADMIN, json={"reviewer_id": reviewer_id, **profile}
            )
            assert made.status_code == 201, made.text
            return {"Authorization": f"Bearer {made.json()['token']}"}

        yield Api(app, client, configured, user)
