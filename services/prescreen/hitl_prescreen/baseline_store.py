"""The per-app anomaly baseline in Redis: Welford accumulators in one hash per app.

One Lua script adds an item's features and returns the updated hash, so an update is a
single round trip and atomic across prescreen replicas. A marker key per item id makes
the update idempotent: a redelivered item is not counted twice. The detector reads a
copy cached in the process, refreshed by every update and at most ``ttl_s`` old.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from hitl_prescreen.detectors.anomaly import Baseline

SEEN_TTL_S = 7 * 24 * 3600

# KEYS[1] baseline hash, KEYS[2] per-item marker; ARGV[1] marker ttl, then name/value pairs.
_UPDATE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
  for i = 2, #ARGV, 2 do
    local name = ARGV[i]
    local x = tonumber(ARGV[i + 1])
    local mean = tonumber(redis.call('HGET', KEYS[1], 'mean:' .. name) or '0')
    local m2 = tonumber(redis.call('HGET', KEYS[1], 'm2:' .. name) or '0')
    local delta = x - mean
    mean = mean + delta / n
    m2 = m2 + delta * (x - mean)
    redis.call('HSET', KEYS[1], 'mean:' .. name, string.format('%.17g', mean),
               'm2:' .. name, string.format('%.17g', m2))
  end
end
return redis.call('HGETALL', KEYS[1])
"""


def parse_baseline(raw: dict[bytes, bytes] | list[bytes]) -> Baseline:
    """A ``Baseline`` from the hash (as a dict, or the flat list a script returns)."""
    if isinstance(raw, list):
        raw = dict(zip(raw[::2], raw[1::2], strict=True))
    baseline = Baseline()
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name == "n":
            baseline.count = int(value)
        elif name.startswith("mean:"):
            baseline.mean[name[5:]] = float(value)
        elif name.startswith("m2:"):
            baseline.m2[name[3:]] = float(value)
    return baseline


class BaselineStore:
    def __init__(self, redis: Redis, namespace: str, *, ttl_s: float = 2.0) -> None:
        self.redis = redis
        self.tag = "{" + namespace + "}"
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Baseline]] = {}
        self._script = redis.register_script(_UPDATE)

    def key(self, app: str) -> str:
        return f"{self.tag}:prescreen:baseline:{app}"

    async def get(self, app: str) -> Baseline:
        cached = self._cache.get(app)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        baseline = parse_baseline(await self.redis.hgetall(self.key(app)))
        self._cache[app] = (time.monotonic(), baseline)
        return baseline

    async def add(self, app: str, item_id: str, values: dict[str, float]) -> Baseline:
        args: list[str | float] = [SEEN_TTL_S]
        for name, x in values.items():
            args.extend((name, repr(float(x))))
        raw = await self._script(
            keys=[self.key(app), f"{self.tag}:prescreen:baseline_seen:{app}:{item_id}"],
            args=args,
        )
        baseline = parse_baseline(raw)
        self._cache[app] = (time.monotonic(), baseline)
        return baseline
