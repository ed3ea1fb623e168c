"""The router's hot state in Redis: routing records, the release outbox, live inputs.

Every write that must happen once is one Lua script, so a redelivered record finds the
work done and gets the stored result back:

- ``{ns}:item:<id>``  the item's routing decision (first decision wins), and for items a
  human reviews their release / retraction too; kept 30 days for reviewed items, one day
  (the replay window) for auto-released ones;
- ``{ns}:release:<id>`` / ``{ns}:retraction:<id>``  release-once markers (event id);
- ``{ns}:outbox``  list of releases / retractions waiting to be published (ADR 6);
- ``{ns}:rates``  adaptive review rates per (app, use case, tier), newest sequence wins;
- ``{ns}:kill:<app>`` + ``{ns}:killed``  kill switches, newest sequence wins.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from hitl_router.domain import Live, SegmentRate
from hitl_shared.events import PolicyUpdate, RoutingDecision

ITEM_TTL_SECONDS = 30 * 24 * 3600  # items a human may still decide on
REPLAY_WINDOW_SECONDS = 24 * 3600  # auto-released items: long enough for any redelivery
_SEP = "\x1f"

_STAGE = """
-- the marker holds the event id only; the outbox holds the event until it is published;
-- with keep, the item's routing record also keeps the event, for its audit record
local function stage(ns, kind, item, event_id, entry, ttl, keep)
  if redis.call('SET', ns .. ':' .. kind .. ':' .. item, event_id, 'NX', 'EX', ttl) then
    redis.call('RPUSH', ns .. ':outbox', entry)
    local ikey = ns .. ':item:' .. item
    if keep == '1' and redis.call('EXISTS', ikey) == 1 then
      redis.call('HSET', ikey, kind, entry)
    end
    return 1
  end
  return 0
end
"""

_ROUTE = (
    _STAGE
    + """
-- first decision wins; a release is staged once; an auto-release is refused while the
-- app's kill switch is on (the caller decides again, holding the item)
local ns, item, decision, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local app, ttl, event_id, keep = ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]
local ikey = ns .. ':item:' .. item
local existing = redis.call('HGET', ikey, 'decision')
if existing then return {0, existing} end
if entry ~= '' and redis.call('SISMEMBER', ns .. ':killed', app) == 1 then return {2, ''} end
redis.call('HSET', ikey, 'decision', decision)
redis.call('EXPIRE', ikey, ttl)
if entry ~= '' then stage(ns, 'release', item, event_id, entry, ttl, keep) end
return {1, ''}
"""
)

_STAGE_ONE = (
    _STAGE
    + """
return stage(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), '1')
"""
)

_RATE = """
-- newest sequence wins: a stale update replayed late is ignored
local key, field, seq, value = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local current = redis.call('HGET', key, field)
if current then
  local stored = cjson.decode(current)
  if tonumber(stored['sequence']) >= seq then return 0 end
end
redis.call('HSET', key, field, value)
return 1
"""

_KILL = """
local ns, app, on, seq = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = ns .. ':kill:' .. app
local stored = tonumber(redis.call('HGET', key, 'sequence') or '-1')
if stored >= seq then return 0 end
redis.call('HSET', key, 'on', on, 'sequence', seq)
if on == '1' then
  redis.call('SADD', ns .. ':killed', app)
else
  redis.call('SREM', ns .. ':killed', app)
end
return 1
"""


@dataclass(frozen=True)
class Routed:
    """What ``route`` did: 'new', 'replay' (stored decision returned) or 'killed'."""

    outcome: str
    decision: RoutingDecision | None = None


@dataclass(frozen=True)
class OutboxEntry:
    """A release or retraction to publish, with its key and trace headers."""

    item_id: str
    event_id: str
    payload: str
    headers: dict[str, str]

    def encode(self) -> str:
        return json.dumps(
            {"k": self.item_id, "e": self.event_id, "h": self.headers, "p": self.payload},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: str | bytes) -> OutboxEntry:
        data = json.loads(raw)
        return cls(item_id=data["k"], event_id=data["e"], payload=data["p"], headers=data["h"])


class RouterStore:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.ns = "{" + namespace + "}"
        self._route = redis.register_script(_ROUTE)
        self._stage = redis.register_script(_STAGE_ONE)
        self._rate = redis.register_script(_RATE)
        self._kill = redis.register_script(_KILL)

    async def route(self, decision: RoutingDecision, release: OutboxEntry | None) -> Routed:
        """Record the decision and stage its release, once per item."""
        [routed] = await self.route_many([(decision, release)])
        return routed

    async def route_many(
        self, pairs: Sequence[tuple[RoutingDecision, OutboxEntry | None]]
    ) -> list[Routed]:
        """``route`` for many items in one pipelined round trip."""
        if not pairs:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for decision, release in pairs:
                await self._route(
                    args=[
                        self.ns,
                        decision.item_id,
                        decision.model_dump_json(),
                        release.encode() if release else "",
                        decision.app,
                        REPLAY_WINDOW_SECONDS if decision.action == "release" else ITEM_TTL_SECONDS,
                        release.event_id if release else "",
                        # an item a human reviews keeps its release in its routing record
                        "" if decision.action == "release" else "1",
                    ],
                    client=pipe,
                )
            replies = await pipe.execute()
        out: list[Routed] = []
        for (decision, _), (code, stored) in zip(pairs, replies, strict=True):
            if int(code) == 2:
                out.append(Routed("killed"))
            elif int(code) == 0:
                out.append(Routed("replay", RoutingDecision.model_validate_json(stored)))
            else:
                out.append(Routed("new", decision))
        return out

    async def stage(self, kind: str, entry: OutboxEntry) -> bool:
        """Stage a release / retraction once per item; False when one was staged before."""
        return bool(
            await self._stage(
                args=[
                    self.ns,
                    kind,
                    entry.item_id,
                    entry.event_id,
                    entry.encode(),
                    ITEM_TTL_SECONDS,
                ]
            )
        )

    async def routing(self, item_id: str) -> RoutingDecision | None:
        raw = await self.redis.hget(f"{self.ns}:item:{item_id}", "decision")
        return RoutingDecision.model_validate_json(raw) if raw else None

    async def remember_routing(self, decision: RoutingDecision) -> bool:
        """Rebuild: restore a routing record unless one is there."""
        key = f"{self.ns}:item:{decision.item_id}"
        added = await self.redis.hsetnx(key, "decision", decision.model_dump_json())
        await self.redis.expire(key, ITEM_TTL_SECONDS)
        return bool(added)

    async def mark_published(self, kind: str, item_id: str, event_id: str) -> bool:
        """Rebuild: a release seen on the topic is never staged again."""
        key = f"{self.ns}:{kind}:{item_id}"
        return bool(await self.redis.set(key, event_id, nx=True, ex=ITEM_TTL_SECONDS))

    async def apply_rate(self, update: PolicyUpdate) -> bool:
        value = json.dumps(
            {
                "rate": update.review_rate,
                "sequence": update.sequence,
                "error_rate": (
                    update.observed_errors / update.observed_items
                    if update.observed_items
                    else None
                ),
            }
        )
        field = _SEP.join((update.app, update.use_case, update.tier))
        return bool(await self._rate(args=[f"{self.ns}:rates", field, update.sequence, value]))

    async def set_kill(self, app: str, *, on: bool, sequence: int) -> bool:
        return bool(await self._kill(args=[self.ns, app, "1" if on else "0", sequence]))

    async def live(self) -> Live:
        """The current adaptive rates and kill switches, for ``decide``."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(f"{self.ns}:rates")
            pipe.smembers(f"{self.ns}:killed")
            raw_rates, raw_killed = await pipe.execute()
        rates: dict[tuple[str, str, str], SegmentRate] = {}
        for field, value in raw_rates.items():
            app, use_case, tier = _text(field).split(_SEP)
            data = json.loads(value)
            rates[(app, use_case, tier)] = SegmentRate(
                rate=float(data["rate"]),
                sequence=int(data["sequence"]),
                error_rate=data.get("error_rate"),
            )
        return Live(rates=rates, killed=frozenset(_text(a) for a in raw_killed))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
