"""Review API wiring: FastAPI app factory; the Kafka broker and Redis live in its lifespan."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, HTTPException, Request, status
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hitl_review_api import routes_admin, routes_items, routes_tasks, ui
from hitl_review_api.audit import AuditLog
from hitl_review_api.auth import TokenStore
from hitl_review_api.knowledge import KnowledgeBase
from hitl_review_api.prompts.routes import router as prompts_router
from hitl_review_api.ratelimit import RateLimiter
from hitl_shared.kafka import build_broker
from hitl_shared.queue import ReviewQueue
from hitl_shared.runtime import configure_logging
from hitl_shared.settings import Settings
from hitl_shared.telemetry import build_tracer_provider, instrument_http

# No inline script or style anywhere: model text can never become code.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class SecurityHeaders:
    """Plain ASGI middleware (cheaper than ``BaseHTTPMiddleware`` on every request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        provider = build_tracer_provider(settings)
        broker = build_broker(settings, provider)
        redis = Redis.from_url(settings.redis_url)
        await broker.start()
        secret = settings.admin_token.get_secret_value() if settings.admin_token else None
        app.state.settings = settings
        app.state.broker = broker
        app.state.redis = redis
        app.state.queue = ReviewQueue(redis, settings.redis_prefix)
        app.state.tokens = TokenStore(redis, settings.redis_prefix, secret)
        app.state.audit = AuditLog(redis, settings.redis_prefix)
        app.state.limiter = RateLimiter(redis, settings.redis_prefix)
        app.state.knowledge = KnowledgeBase(redis, settings.redis_prefix)
        try:
            yield
        finally:
            await broker.stop()
            await redis.aclose()
            provider.shutdown()

    app = FastAPI(
        title="HITL-Ops review API",
        version="0.2.0",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI needs a CDN and inline script; the schema is at /openapi.json
        redoc_url=None,
    )

    app.add_middleware(SecurityHeaders)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"description": "Redis unreachable"}})
    async def readyz(request: Request) -> dict[str, str]:
        try:
            await request.app.state.redis.ping()
        except Exception as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"redis: {exc}") from exc
        return {"status": "ready"}

    app.include_router(routes_tasks.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_items.router)
    app.include_router(prompts_router)
    ui.mount(app)
    instrument_http(app)
    return app


def from_env() -> FastAPI:
    """App factory for uvicorn worker processes: settings from ``HITL_*``."""
    settings = Settings(service_name="review-api")
    configure_logging(settings)
    return create_app(settings)


def main() -> None:
    """Serve; ``WEB_CONCURRENCY`` (uvicorn's usual variable) sets worker processes.

    The API keeps no state in the process that matters for correctness (the audit head
    cache is only a hint the Lua append checks), so workers and replicas scale it out.
    """
    settings = Settings(service_name="review-api")
    configure_logging(settings)
    workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
    if workers > 1:
        uvicorn.run(
            "hitl_review_api.app:from_env",
            factory=True,
            workers=workers,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
        )
        return
    uvicorn.run(
        create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None
    )


if __name__ == "__main__":
    main()
