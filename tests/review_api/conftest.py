"""Review-api fixtures: the app with its lifespan in-process, and a way to make users."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from hitl_review_api.app import create_app
from hitl_shared.devservers import free_port
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


@dataclass
class Live:
    url: str
    settings: Settings


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[Live]:
    """The real app under uvicorn on a free port, in its own thread and event loop."""
    configured = with_admin(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(configured), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, name="review-api-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("review-api did not start")
        await asyncio.sleep(0.05)
    try:
        yield Live(f"http://127.0.0.1:{port}", configured)
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 15)


async def make_user(live: Live, reviewer_id: str, **profile: object) -> str:
    async with httpx.AsyncClient(base_url=live.url) as client:
        made = await client.post(
            "/api/reviewers", headers=ADMIN, json={"reviewer_id": reviewer_id, **profile}
        )
        assert made.status_code == 201, made.text
        return str(made.json()["token"])
