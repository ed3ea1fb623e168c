"""Review API wiring: FastAPI app factory; the Kafka broker and Redis live in its lifespan."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse
from opentelemetry import trace
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from hitl_review_api.auth import Caller, Principal, TokenStore, reviewer_only
from hitl_shared.events import ReviewDecision, ReviewTask, Severity, TaxonomyLabel
from hitl_shared.kafka import build_broker
from hitl_shared.queue import ReviewQueue
from hitl_shared.runtime import configure_logging
from hitl_shared.settings import Settings
from hitl_shared.telemetry import build_tracer_provider

_DECISION_NS = uuid.UUID("0b5e7f9e-4a43-4f37-9a39-5a3f7c6a1c21")


class NewReviewer(Principal):
    pass


class DecisionIn(BaseModel):
    fence: str = Field(min_length=1, max_length=32)
    verdict: Literal["approve", "edit", "reject", "escalate"]
    edited_text: str | None = Field(default=None, max_length=200_000)
    reason: str | None = Field(default=None, max_length=2000)
    labels: tuple[TaxonomyLabel, ...] = ()
    severity: Severity | None = None
    notes: str | None = Field(default=None, max_length=5000)
    time_spent_s: float = Field(default=0.0, ge=0.0, le=86_400)


class FenceIn(BaseModel):
    fence: str = Field(min_length=1, max_length=32)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        provider = build_tracer_provider(settings)
        broker = build_broker(settings, provider)
        redis = Redis.from_url(settings.redis_url)
        await broker.start()
        app.state.broker = broker
        app.state.redis = redis
        app.state.queue = ReviewQueue(redis, settings.redis_prefix)
        secret = settings.admin_token.get_secret_value() if settings.admin_token else None
        app.state.tokens = TokenStore(redis, settings.redis_prefix, secret)
        try:
            yield
        finally:
            await broker.stop()
            await redis.aclose()
            provider.shutdown()

    app = FastAPI(title="HITL-Ops review API", version="0.1.0", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> dict[str, str]:
        try:
            await request.app.state.redis.ping()
        except Exception as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"redis: {exc}") from exc
        return {"status": "ready"}

    @app.post("/api/reviewers", status_code=201)
    async def create_reviewer(body: NewReviewer, who: Caller, request: Request) -> dict[str, str]:
        if who.role != "admin":
            raise HTTPException(status.HTTP_403_FORBIDDEN, "admin only")
        token = await request.app.state.tokens.issue(Principal(**body.model_dump()))
        return {"reviewer_id": body.reviewer_id, "token": token}

    @app.post("/api/tasks/claim")
    async def claim(who: Caller, request: Request) -> Response:
        reviewer = reviewer_only(who)
        got = await request.app.state.queue.claim(reviewer, lease_seconds=settings.lease_seconds)
        if got is None:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        task = ReviewTask.model_validate_json(got.payload)
        body = {
            "task_id": got.task_id,
            "fence": got.fence,
            "lease_expires_ms": got.lease_expires_ms,
            "task": task.model_dump(mode="json"),
        }
        return Response(content=_json(body), media_type="application/json")

    @app.post("/api/tasks/{task_id}/heartbeat")
    async def heartbeat(
        task_id: str, body: FenceIn, who: Caller, request: Request
    ) -> dict[str, int]:
        reviewer = reviewer_only(who)
        expires = await request.app.state.queue.renew(
            task_id, reviewer.reviewer_id, body.fence, lease_seconds=settings.lease_seconds
        )
        if not expires:
            raise HTTPException(status.HTTP_409_CONFLICT, "lease not held")
        return {"lease_expires_ms": expires}

    @app.post("/api/tasks/{task_id}/decision")
    async def decide(
        task_id: str, body: DecisionIn, who: Caller, request: Request
    ) -> dict[str, str]:
        reviewer = reviewer_only(who)
        queue: ReviewQueue = request.app.state.queue
        redis: Redis = request.app.state.redis
        done_key = f"{queue.ns}:decided:{task_id}:{body.fence}"
        if (previous := await redis.get(done_key)) is not None:
            return {"status": "already_recorded", "event_id": previous.decode()}
        if not await queue.renew(
            task_id, reviewer.reviewer_id, body.fence, lease_seconds=settings.lease_seconds
        ):
            raise HTTPException(status.HTTP_409_CONFLICT, "lease not held by you")
        task = ReviewTask.model_validate_json((await queue.task(task_id))["payload"])
        output = task.screened.output
        try:
            decision = ReviewDecision(
                event_id=str(uuid.uuid5(_DECISION_NS, f"{task_id}:{body.fence}")),
                item_id=task.item_id,
                task_id=task_id,
                reviewer_id=reviewer.reviewer_id,
                reviewer_level=reviewer.level,
                original_text=output.output_text,
                final=body.verdict != "escalate",
                app=output.app,
                use_case=output.use_case,
                tier=task.tier,
                model=output.model,
                prompt_template_id=output.prompt_template_id,
                prompt_template_version=output.prompt_template_version,
                **body.model_dump(exclude={"fence"}),
            )
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
        trace.get_current_span().set_attribute("hitl.item_id", task.item_id)
        await request.app.state.broker.publish(
            decision.to_bytes(),
            settings.topics.review_decisions,
            key=task.item_id.encode(),
            headers={"content-type": "application/json"},
        )
        await redis.set(done_key, decision.event_id, ex=7 * 86400)
        if body.verdict == "escalate":
            await queue.requeue(
                task_id,
                reviewer.reviewer_id,
                body.fence,
                decided=True,
                bucket=_escalated_bucket(task, reviewer.level),
            )
        else:
            await queue.complete(task_id, reviewer.reviewer_id, body.fence)
        return {"status": "recorded", "event_id": decision.event_id}

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return "<!doctype html><title>HITL-Ops review</title><h1>HITL-Ops review UI</h1>"

    return app


def _escalated_bucket(task: ReviewTask, level: str) -> str:
    nxt = {"L1": "L2", "L2": "L3", "L3": "L3"}[level]
    return f"{nxt}:{task.skills[0] if task.skills else 'general'}:{task.language}"


def _json(body: object) -> str:
    import json

    return json.dumps(body, ensure_ascii=False)


def main() -> None:
    settings = Settings(service_name="review-api")
    configure_logging(settings)
    uvicorn.run(
        create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None
    )


if __name__ == "__main__":
    main()
