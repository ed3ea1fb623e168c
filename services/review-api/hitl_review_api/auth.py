"""Bearer-token authentication; tokens are stored only as SHA-256 hashes in Redis."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from hitl_shared.queue import Reviewer

Role = Literal["reviewer", "admin", "auditor"]


class Principal(BaseModel):
    """Who is calling, as the server knows them (never trusted from the client)."""

    reviewer_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@\-]+$")
    role: Role = "reviewer"
    level: Literal["L1", "L2", "L3"] = "L1"
    skills: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("en",)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, redis: Redis, namespace: str, admin_token: str | None) -> None:
        self.redis = redis
        self.ns = "{" + namespace + "}"
        self._admin_hash = token_hash(admin_token) if admin_token else None

    async def issue(self, principal: Principal) -> str:
        token = secrets.token_urlsafe(32)
        await self.redis.set(f"{self.ns}:token:{token_hash(token)}", principal.model_dump_json())
        return token

    async def resolve(self, token: str) -> Principal | None:
        digest = token_hash(token)
        if self._admin_hash and hmac.compare_digest(digest, self._admin_hash):
            return Principal(reviewer_id="admin", role="admin", level="L3")
        raw = await self.redis.get(f"{self.ns}:token:{digest}")
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
    found: Principal | None = await request.app.state.tokens.resolve(credentials.credentials)
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid token", headers={"WWW-Authenticate": "Bearer"}
        )
    return found


Caller = Annotated[Principal, Depends(current_principal)]


def reviewer_only(who: Principal) -> Reviewer:
    """Only reviewers work tasks; admins and auditors are refused on the server."""
    if who.role != "reviewer":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only reviewers work tasks")
    return Reviewer(who.reviewer_id, who.level, who.skills, who.languages)
