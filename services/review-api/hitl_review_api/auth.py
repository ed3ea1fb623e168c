"""Bearer-token authentication and role checks, all decided on the server.

Tokens are random, shown once, and stored only as SHA-256 hashes: ``{ns}:token:<hash>``
holds the principal's JSON (one GET per request), ``{ns}:reviewer:<id>`` the profile and
``{ns}:reviewer-tokens:<id>`` the hashes to revoke when a reviewer is disabled or changed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from hitl_review_api.ratelimit import RateLimiter, too_many
from hitl_shared.queue import Reviewer

Role = Literal["reviewer", "admin", "auditor"]
Level = Literal["L1", "L2", "L3"]
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")]


RESERVED_IDS = ("admin", "cli")  # the bootstrap admin and the CLI act under these names


class Principal(BaseModel):
    """Who is calling, as the server knows them (never trusted from the client)."""

    reviewer_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@\-]+$")
    role: Role = "reviewer"
    level: Level = "L1"
    skills: tuple[Tag, ...] = Field(default=(), max_length=16)
    languages: tuple[Tag, ...] = Field(default=("en",), min_length=1, max_length=8)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Reviewer profiles and their hashed tokens in Redis."""

    def __init__(self, redis: Redis, namespace: str, admin_token: str | None) -> None:
        self.redis = redis
        self.ns = "{" + namespace + "}"
        self._admin_hash = token_hash(admin_token) if admin_token else None

    def _token_key(self, digest: str) -> str:
        return f"{self.ns}:token:{digest}"

    async def save(self, principal: Principal) -> None:
        """Create or update a profile; existing tokens carry the new profile at once."""
        raw = principal.model_dump_json()
        hashes = await self.redis.smembers(f"{self.ns}:reviewer-tokens:{principal.reviewer_id}")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(f"{self.ns}:reviewer:{principal.reviewer_id}", raw)
            pipe.sadd(f"{self.ns}:reviewers", principal.reviewer_id)
            for digest in hashes:
                pipe.set(self._token_key(_text(digest)), raw)
            await pipe.execute()

    async def issue(self, principal: Principal) -> str:
        """Save the profile and return a new token (the only time it is ever visible)."""
        await self.save(principal)
        token = secrets.token_urlsafe(32)
        digest = token_hash(token)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._token_key(digest), principal.model_dump_json())
            pipe.sadd(f"{self.ns}:reviewer-tokens:{principal.reviewer_id}", digest)
            await pipe.execute()
        return token

    async def get(self, reviewer_id: str) -> Principal | None:
        raw = await self.redis.get(f"{self.ns}:reviewer:{reviewer_id}")
        return Principal.model_validate_json(raw) if raw else None

    async def all(self) -> list[Principal]:
        ids = sorted(_text(i) for i in await self.redis.smembers(f"{self.ns}:reviewers"))
        if not ids:
            return []
        raws = await self.redis.mget([f"{self.ns}:reviewer:{i}" for i in ids])
        return [Principal.model_validate_json(r) for r in raws if r]

    async def revoke_all(self, reviewer_id: str) -> int:
        """Disable a reviewer: every token stops working; the profile stays for the audit."""
        key = f"{self.ns}:reviewer-tokens:{reviewer_id}"
        hashes = [_text(h) for h in await self.redis.smembers(key)]
        async with self.redis.pipeline(transaction=True) as pipe:
            for digest in hashes:
                pipe.delete(self._token_key(digest))
            pipe.delete(key)
            await pipe.execute()
        return len(hashes)

    async def resolve(self, token: str) -> Principal | None:
        digest = token_hash(token)
        if self._admin_hash and hmac.compare_digest(digest, self._admin_hash):
            return Principal(reviewer_id="admin", role="admin", level="L3")
        raw = await self.redis.get(self._token_key(digest))
        return Principal.model_validate_json(raw) if raw else None


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    limiter: RateLimiter = request.app.state.limiter
    limit = request.app.state.settings.auth_failures_per_minute
    client = request.client.host if request.client else "unknown"
    if await limiter.count("auth-failures", client) >= limit:
        raise too_many("failed authentications from this address")
    token = credentials.credentials
    tokens: TokenStore = request.app.state.tokens
    found = await tokens.resolve(token) if len(token) <= 512 else None
    if found is None:
        await limiter.hit("auth-failures", client)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid token", headers={"WWW-Authenticate": "Bearer"}
        )
    return found


Caller = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting only the given roles (403 otherwise)."""

    async def check(who: Caller) -> Principal:
        if who.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role '{who.role}' may not do this; needs {roles}"
            )
        return who

    return check


AdminCaller = Annotated[Principal, Depends(require("admin"))]
ReaderCaller = Annotated[Principal, Depends(require("admin", "auditor"))]


def reviewer_only(who: Principal) -> Reviewer:
    """Only reviewers work tasks; admins and auditors are refused on the server."""
    if who.role != "reviewer":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only reviewers work tasks")
    return Reviewer(who.reviewer_id, who.level, who.skills, who.languages)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
