"""Admin endpoints: reviewers and tokens; the queue overview and its live stream.

Admins change things; auditors may read the overview and reviewer list but change
nothing. Each change is written to the admin audit trail (``_admin`` item).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, field_validator
from sse_starlette.sse import EventSourceResponse

from hitl_review_api.auth import RESERVED_IDS, AdminCaller, Caller, Principal, ReaderCaller
from hitl_review_api.overview import overview

router = APIRouter(prefix="/api", tags=["admin"])
ADMIN_TRAIL = "_admin"
ReviewerId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@\-]+$")]


class NewReviewer(Principal):
    @field_validator("reviewer_id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.lower() in RESERVED_IDS:
            raise ValueError(f"'{value}' is reserved")
        return value


class Issued(BaseModel):
    reviewer_id: str
    token: str


@router.get("/me", summary="Who the token belongs to")
async def me(who: Caller) -> Principal:
    return who


@router.post("/reviewers", status_code=201, summary="Create (or update) a user and issue a token")
async def create_reviewer(body: NewReviewer, who: AdminCaller, request: Request) -> Issued:
    st = request.app.state
    principal = Principal(**body.model_dump())
    token = await st.tokens.issue(principal)
    await st.audit.append(
        ADMIN_TRAIL,
        {
            "actor": who.reviewer_id,
            "role": who.role,
            "action": "create_reviewer",
            "after": principal.model_dump(mode="json"),
        },
    )
    return Issued(reviewer_id=principal.reviewer_id, token=token)


@router.get("/reviewers", summary="Every user with role, level and skills")
async def list_reviewers(who: ReaderCaller, request: Request) -> list[Principal]:
    return list(await request.app.state.tokens.all())


@router.post(
    "/reviewers/{reviewer_id}/tokens", status_code=201, summary="Issue one more token for a user"
)
async def new_token(reviewer_id: ReviewerId, who: AdminCaller, request: Request) -> Issued:
    st = request.app.state
    principal = await st.tokens.get(reviewer_id)
    if principal is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no reviewer {reviewer_id!r}")
    token = await st.tokens.issue(principal)
    await st.audit.append(
        ADMIN_TRAIL,
        {"actor": who.reviewer_id, "role": who.role, "action": "issue_token", "of": reviewer_id},
    )
    return Issued(reviewer_id=reviewer_id, token=token)


@router.delete("/reviewers/{reviewer_id}/tokens", summary="Revoke every token of a user")
async def revoke(reviewer_id: ReviewerId, who: AdminCaller, request: Request) -> dict[str, int]:
    st = request.app.state
    revoked = await st.tokens.revoke_all(reviewer_id)
    await st.audit.append(
        ADMIN_TRAIL,
        {"actor": who.reviewer_id, "role": who.role, "action": "revoke_tokens", "of": reviewer_id},
    )
    return {"revoked": revoked}


@router.get("/overview", summary="Depth, oldest age and SLA breaches per bucket; workload")
async def get_overview(who: ReaderCaller, request: Request) -> dict[str, Any]:
    st = request.app.state
    return await overview(st.queue, st.tokens)


@router.get(
    "/overview/stream",
    summary="The overview as server-sent events, every `interval` seconds",
    response_class=EventSourceResponse,
)
async def stream_overview(
    who: ReaderCaller,
    request: Request,
    interval: Annotated[float, Query(ge=0.2, le=60)] = 2.0,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> EventSourceResponse:
    st = request.app.state

    async def events() -> AsyncIterator[dict[str, str]]:
        sent = 0
        while limit is None or sent < limit:
            if await request.is_disconnected():
                return
            data = await overview(st.queue, st.tokens)
            yield {"event": "overview", "data": json.dumps(data)}
            sent += 1
            if limit is None or sent < limit:
                await asyncio.sleep(interval)

    return EventSourceResponse(events(), ping=15)
