"""The item record: everything that happened to one item, in one call, with proof.

Original output, flags and scores, the routing decision and its reasons (the router's
``{ns}:item:<id>`` hash), every human action with who / when / before / after (the
hash-chained audit list), the final release or retraction, and the chain's verification.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, status

from hitl_review_api.audit import verify
from hitl_review_api.auth import Caller, ReaderCaller
from hitl_review_api.routes_admin import ADMIN_TRAIL

router = APIRouter(prefix="/api", tags=["items"])
ItemIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]


def _load(raw: Any) -> Any:
    return json.loads(raw) if raw else None


@router.get("/items/{item_id}", summary="Full audit record of one item, with chain verification")
async def item_record(item_id: ItemIdPath, who: Caller, request: Request) -> dict[str, Any]:
    st = request.app.state
    ns = st.queue.ns
    redis = st.redis
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(f"{ns}:item:{item_id}")
        pipe.get(f"{ns}:release:{item_id}")
        pipe.get(f"{ns}:retraction:{item_id}")
        stored, release, retraction = await pipe.execute()
    fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in stored.items()}
    actions = await st.audit.entries(item_id)
    if not fields and not actions and release is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no record of item {item_id!r}")
    screened = _load(fields.get("screened"))
    return {
        "item_id": item_id,
        "original": screened["output"] if screened else None,
        "flags": screened["flags"] if screened else [],
        "scores": screened["scores"] if screened else {},
        "routing": _load(fields.get("decision")),
        "actions": actions,
        "release": _load(release),
        "retraction": _load(retraction),
        "verification": verify(actions).model_dump(),
    }


@router.get("/admin-trail", summary="Hash-chained trail of admin changes (users, tokens)")
async def admin_trail(who: ReaderCaller, request: Request) -> dict[str, Any]:
    actions = await request.app.state.audit.entries(ADMIN_TRAIL)
    return {"actions": actions, "verification": verify(actions).model_dump()}
