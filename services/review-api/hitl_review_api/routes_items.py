"""The item record: everything that happened to one item, in one call, with proof.

Original output, flags and scores (kept by this API when a reviewer first claims the
item), the routing decision and its reasons (the router's ``{ns}:item:<id>`` hash),
every human action with who / when / before / after (the hash-chained audit list), the
final release or retraction, and the chain's verification.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, status

from hitl_review_api.auth import Caller, ReaderCaller
from hitl_review_api.routes_admin import ADMIN_TRAIL

router = APIRouter(prefix="/api", tags=["items"])
ItemIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]


def _load(raw: Any) -> Any:
    return json.loads(raw) if raw else None


def _released(raw: Any) -> Any:
    """The release event, whether stored bare or wrapped in the router's outbox entry.

    The router keeps a reviewed item's release in its routing record; for an auto-released
    item only the release-once marker (its event id) is left, and the record names that.
    """
    text = raw.decode() if isinstance(raw, bytes) else raw
    if text and not text.lstrip().startswith(("{", "[")):
        return {"event_id": text, "published_to": "hitl.llm.released"}
    data = _load(raw)
    if isinstance(data, dict):
        inner = data.get("p", data.get("payload"))
        if isinstance(inner, str):
            return json.loads(inner)
    return data


def review_item_key(ns: str, item_id: str) -> str:
    """What the review API keeps of an item it has shown (the router may keep less)."""
    return f"{ns}:review-item:{item_id}"


@router.get("/items/{item_id}", summary="Full audit record of one item, with chain verification")
async def item_record(item_id: ItemIdPath, who: Caller, request: Request) -> dict[str, Any]:
    st = request.app.state
    ns = st.queue.ns
    redis = st.redis
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(review_item_key(ns, item_id))
        pipe.hgetall(f"{ns}:item:{item_id}")
        pipe.get(f"{ns}:release:{item_id}")
        pipe.get(f"{ns}:retraction:{item_id}")
        shown, routed, release, retraction = await pipe.execute()
    fields = {
        (k.decode() if isinstance(k, bytes) else k): v for k, v in {**shown, **routed}.items()
    }
    actions, verification = await st.audit.checked(item_id)
    if not fields and not actions and release is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no record of item {item_id!r}")
    task = _load(fields.get("task")) or {}
    screened = _load(fields.get("screened")) or task.get("screened")
    routing = _load(fields.get("decision")) or task.get("decision")
    return {
        "item_id": item_id,
        "original": screened["output"] if screened else None,
        "flags": screened["flags"] if screened else [],
        "scores": screened["scores"] if screened else {},
        "routing": routing,
        "actions": actions,
        "release": _released(fields.get("release") or release),
        "retraction": _released(fields.get("retraction") or retraction),
        "verification": verification.model_dump(),
    }


@router.get("/admin-trail", summary="Hash-chained trail of admin changes (users, tokens)")
async def admin_trail(who: ReaderCaller, request: Request) -> dict[str, Any]:
    actions, verification = await request.app.state.audit.checked(ADMIN_TRAIL)
    return {"actions": actions, "verification": verification.model_dump()}
