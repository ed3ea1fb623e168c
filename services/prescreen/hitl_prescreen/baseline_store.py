"""The per-app anomaly baseline in Redis: Welford accumulators in one hash per app.

One Lua script adds the features of an app's items and returns the updated hash,
atomically across prescreen replicas. A marker key per item id makes the update
idempotent: a redelivered item is not counted twice. Updates are buffered and sent
together (one script call per app, in one pipelined round trip per ``flush_every``
items or ``flush_after_s`` seconds), so the hot path does not
wait on Redis per item; a crash loses at most the unsent tail, which only makes the
statistical baseline slightly younger. The detector reads a copy cached in the process,
refreshed by every flush and at most ``ttl_s`` old.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from redis.asyncio import Redis

from hitl_prescreen.detectors.anomaly import Baseline

SEEN_TTL_S = 7 * 24 * 3600
MAX_PENDING = 10_000
ITEMS_PER_CALL = 500

# KEYS[1] baseline hash, KEYS[2..] one marker per item; ARGV[1] marker ttl, ARGV[2] the
# feature names joined by commas, ARGV[3] every item's values (in name order) joined by
# spaces. The hash is read once and written once per call: the arithmetic per item is
# the same Welford step as ``Baseline.add``, in the same order.
_UPDATE = """
local ttl = tonumber(ARGV[1])
local names = {}
for name in string.gmatch(ARGV[2], '[^,]+') do names[#names + 1] = name end
local values = {}
for v in string.gmatch(ARGV[3], '%S+') do values[#values + 1] = tonumber(v) end
local f = #names
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local mean, m2 = {}, {}
for j = 1, f do
  mean[j] = tonumber(redis.call('HGET', KEYS[1], 'mean:' .. names[j]) or '0')
  m2[j] = tonumber(redis.call('HGET', KEYS[1], 'm2:' .. names[j]) or '0')
end
local added = 0
for k = 2, #KEYS do
  if redis.call('SET', KEYS[k], '1', 'NX', 'EX', ttl) then
    added = added + 1
    n = n + 1
    local at = (k - 2) * f
    for j = 1, f do
      local x = values[at + j]
      local delta = x - mean[j]
      mean[j] = mean[j] + delta / n
      m2[j] = m2[j] + delta * (x - mean[j])
    end
  end
end
if added > 0 then
  local fields = {'n', n}
  for j = 1, f do
    fields[#fields + 1] = 'mean:' .. names[j]
    fields[#fields + 1] = string.format('%.17g', mean[j])
    fields[#fields + 1] = 'm2:' .. names[j]
    fields[#fields + 1] = string.format('%.17g', m2[j])
  end
  redis.call('HSET', KEYS[1], unpack(fields))
end
return redis.call('HGETALL', KEYS[1])
"""


def parse_baseline(raw: Mapping[bytes | str, bytes | str] | list[bytes]) -> Baseline:
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
    def __init__(
        self,
        redis: Redis,
        namespace: str,
        *,
        ttl_s: float = 2.0,
        flush_every: int = 200,
        flush_after_s: float = 0.5,
        timeout_s: float = 0.5,
    ) -> None:
        self.redis = redis
        self.tag = "{" + namespace + "}"
        self.ttl_s = ttl_s
        self.flush_every = flush_every
        self.flush_after_s = flush_after_s
        self.timeout_s = timeout_s
        self._cache: dict[str, tuple[float, Baseline]] = {}
        self._script = redis.register_script(_UPDATE)
        self._pending: list[tuple[str, str, dict[str, float]]] = []
        self._oldest = 0.0

    def key(self, app: str) -> str:
        return f"{self.tag}:prescreen:baseline:{app}"

    def cached(self, app: str) -> Baseline | None:
        """The app's baseline if the process holds a fresh enough copy (no I/O)."""
        cached = self._cache.get(app)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        return None

    async def get(self, app: str) -> Baseline:
        cached = self.cached(app)
        if cached is not None:
            return cached
        baseline = parse_baseline(await self.redis.hgetall(self.key(app)))
        self._cache[app] = (time.monotonic(), baseline)
        return baseline

    def add(self, app: str, item_id: str, values: dict[str, float]) -> None:
        """Queue one item's features; ``flush_if_due`` sends the queue."""
        if not self._pending:
            self._oldest = time.monotonic()
        self._pending.append((app, item_id, values))

    async def flush_if_due(self) -> None:
        """Send the queue when it is full or its oldest update is old enough."""
        if self._pending and (
            len(self._pending) >= self.flush_every
            or time.monotonic() - self._oldest >= self.flush_after_s
        ):
            await self.flush()

    async def flush(self) -> None:
        """Send every queued update in one pipelined round trip."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        by_app: dict[str, list[tuple[str, dict[str, float]]]] = {}
        for app, item_id, values in pending:
            by_app.setdefault(app, []).append((item_id, values))
        calls: list[str] = []  # the app of each script call, in pipeline order
        pipe = self.redis.pipeline(transaction=False)
        for app, queued in by_app.items():
            for start in range(0, len(queued), ITEMS_PER_CALL):  # keep each script short
                items = queued[start : start + ITEMS_PER_CALL]
                names = sorted({name for _, values in items for name in values})
                numbers = " ".join(
                    repr(float(values.get(name, 0.0))) for _, values in items for name in names
                )
                args = [SEEN_TTL_S, ",".join(names), numbers]
                markers = [
                    f"{self.tag}:prescreen:baseline_seen:{app}:{item_id}" for item_id, _ in items
                ]
                await self._script(keys=[self.key(app), *markers], args=args, client=pipe)
                calls.append(app)
        try:
            replies = await asyncio.wait_for(pipe.execute(), self.timeout_s)
        except BaseException:
            # Retried with the next flush; bounded, so an outage cannot grow memory.
            self._pending = (pending + self._pending)[-MAX_PENDING:]
            raise
        now = time.monotonic()
        for app, raw in zip(calls, replies, strict=True):
            self._cache[app] = (now, parse_baseline(raw))
