"""The real pipeline for client tests: prescreen + router (+ review-api) in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from pydantic import SecretStr
from redis.asyncio import Redis

from hitl_prescreen.app import wire as wire_prescreen
from hitl_prescreen.domain import screen
from hitl_review_api.app import create_app
from hitl_router.app import wire as wire_router
from hitl_router.domain import decide
from hitl_shared.events import LLMOutput
from hitl_shared.settings import Settings
from tests.support import running

ADMIN_TOKEN = "admin-secret-token"
REVIEWERS = (("rev-l2", "L2"), ("rev-l3", "L3"))
SKILLS = ["general", "billing", "medical", "legal", "finance", "security"]


def current_policy() -> Any:
    """The policy the wired router uses (the shipped file, or the older in-code default)."""
    try:
        from hitl_router.policy import default_policy

        return default_policy()
    except (ImportError, OSError):
        from hitl_router.domain import Policy

        return Policy()


def auto_released(make: Callable[[str], LLMOutput], prefix: str) -> LLMOutput:
    """An output the router's current pure decide() releases without review."""
    policy = current_policy()
    for n in range(2000):
        output = make(f"{prefix}-{n}")
        if decide(screen(output), policy).action == "release":
            return output
    raise AssertionError("the current policy released none of 2000 candidates")


def held_leak(item_id: str, make: Callable[..., LLMOutput]) -> LLMOutput:
    """A card-number leak to a highly vulnerable user: held as critical under any policy."""
    return make(
        item_id,
        output_text="Your card 4111 1111 1111 1111 is on file.",
        user_vulnerability="high",
    )


@asynccontextmanager
async def pipeline(settings: Settings, redis: Redis) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for wire in (wire_prescreen, wire_router):
            await stack.enter_async_context(running(settings, wire, redis))
        yield


class Reviewers:
    """Reviewers working the real review API until each item got its verdict."""

    def __init__(self, http: httpx.AsyncClient, tokens: dict[str, dict[str, str]]) -> None:
        self.http = http
        self.tokens = tokens

    async def work(
        self,
        verdicts: dict[str, dict[str, Any]] | Callable[[str], dict[str, Any]],
        done: Callable[[], bool],
        timeout: float = 60,
    ) -> list[str]:
        """Claim and decide tasks (each reviewer in turn, for multi-level approval)."""
        if isinstance(verdicts, dict):
            table = verdicts

            def verdict_for(item_id: str) -> dict[str, Any]:
                # a shared stack may still hold another test's item: approve it
                return table.get(item_id, {"verdict": "approve"})
        else:
            verdict_for = verdicts
        decided: list[str] = []
        async with asyncio.timeout(timeout):
            while not done():
                progressed = False
                for headers in self.tokens.values():
                    claimed = await self.http.post("/api/tasks/claim", headers=headers)
                    if claimed.status_code != 200:
                        continue
                    task = claimed.json()
                    item_id = task["task"]["item_id"]
                    body = {"fence": task["fence"], **verdict_for(item_id)}
                    made = await self.http.post(
                        f"/api/tasks/{task['task_id']}/decision", headers=headers, json=body
                    )
                    assert made.status_code == 200, made.text
                    decided.append(item_id)
                    progressed = True
                if not progressed:
                    await asyncio.sleep(0.1)
        return decided


@asynccontextmanager
async def reviewing(settings: Settings, redis: Redis) -> AsyncIterator[Reviewers]:
    """The pipeline plus the review API, with one L2 and one L3 reviewer."""
    app = create_app(settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN)}))
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(pipeline(settings, redis))
        await stack.enter_async_context(app.router.lifespan_context(app))
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        )
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        tokens = {}
        for name, level in REVIEWERS:
            made = await http.post(
                "/api/reviewers",
                headers=admin,
                json={"reviewer_id": name, "level": level, "skills": SKILLS},
            )
            assert made.status_code == 201, made.text
            tokens[name] = {"Authorization": f"Bearer {made.json()['token']}"}
        yield Reviewers(http, tokens)
