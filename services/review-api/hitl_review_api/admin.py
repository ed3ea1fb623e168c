"""Admin CLI talking to Redis directly, for bootstrapping before any admin token exists.

    python -m hitl_review_api.admin create-reviewer alice --level L2 --skill medical
    python -m hitl_review_api.admin create-reviewer ops --role admin
    python -m hitl_review_api.admin issue-token alice
    python -m hitl_review_api.admin revoke alice
    python -m hitl_review_api.admin list
    python -m hitl_review_api.admin verify-audit ITEM_ID [ITEM_ID ...]

Connection settings come from the usual ``HITL_*`` environment variables. A new token
is printed once on stdout; only its hash is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from redis.asyncio import Redis

from hitl_review_api.audit import AuditLog
from hitl_review_api.auth import Principal, TokenStore
from hitl_review_api.routes_admin import ADMIN_TRAIL, NewReviewer
from hitl_shared.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hitl_review_api.admin")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-reviewer", help="create or update a user; prints a token")
    create.add_argument("reviewer_id")
    create.add_argument("--role", choices=("reviewer", "admin", "auditor"), default="reviewer")
    create.add_argument("--level", choices=("L1", "L2", "L3"), default="L1")
    create.add_argument("--skill", action="append", default=[], help="repeat for several")
    create.add_argument("--language", action="append", default=[], help="repeat; default en")
    issue = sub.add_parser("issue-token", help="print one more token for an existing user")
    issue.add_argument("reviewer_id")
    revoke = sub.add_parser("revoke", help="revoke every token of a user")
    revoke.add_argument("reviewer_id")
    sub.add_parser("list", help="list users as JSON lines")
    check = sub.add_parser(
        "verify-audit", help="check items' hash-chained audit trails; exit 1 if any was altered"
    )
    check.add_argument("item_ids", nargs="+", metavar="ITEM_ID")
    return parser


async def run(args: argparse.Namespace, settings: Settings) -> int:
    redis = Redis.from_url(settings.redis_url)
    tokens = TokenStore(redis, settings.redis_prefix, None)
    audit = AuditLog(redis, settings.redis_prefix)
    actor = {"actor": "cli", "role": "admin"}
    try:
        if args.command == "create-reviewer":
            principal = NewReviewer(
                reviewer_id=args.reviewer_id,
                role=args.role,
                level=args.level,
                skills=tuple(args.skill),
                languages=tuple(args.language or ["en"]),
            )
            print(await tokens.issue(Principal(**principal.model_dump())))
            await audit.append(
                ADMIN_TRAIL,
                {**actor, "action": "create_reviewer", "after": principal.model_dump(mode="json")},
            )
        elif args.command == "issue-token":
            found = await tokens.get(args.reviewer_id)
            if found is None:
                print(f"no such reviewer: {args.reviewer_id}", file=sys.stderr)
                return 1
            print(await tokens.issue(found))
            await audit.append(
                ADMIN_TRAIL, {**actor, "action": "issue_token", "of": args.reviewer_id}
            )
        elif args.command == "revoke":
            count = await tokens.revoke_all(args.reviewer_id)
            await audit.append(
                ADMIN_TRAIL, {**actor, "action": "revoke_tokens", "of": args.reviewer_id}
            )
            print(f"revoked {count} token(s)")
        elif args.command == "verify-audit":
            return await _verify(audit, args.item_ids)
        else:
            for person in await tokens.all():
                print(json.dumps(person.model_dump(mode="json")))
        return 0
    finally:
        await redis.aclose()


async def _verify(audit: AuditLog, item_ids: Sequence[str]) -> int:
    """One JSON line per item; a broken chain (edited, reordered, deleted) fails the run."""
    broken = 0
    for item_id in item_ids:
        _, verdict = await audit.checked(item_id)
        broken += not verdict.ok
        print(json.dumps({"item_id": item_id, **verdict.model_dump()}))
    return 1 if broken else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(run(args, Settings(service_name="review-api-admin")))
    except ValidationError as exc:
        print(f"invalid input: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
