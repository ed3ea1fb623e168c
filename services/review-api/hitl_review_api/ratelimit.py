"""Fixed-window rate limits kept in Redis, so every API replica shares the same counts.

Two limits protect the API: failed authentications per client address (token guessing)
and decisions per reviewer (a runaway script or a stuck key). A client over a limit gets
429 with ``Retry-After``.
"""

from __future__ import annotations

import time

from fastapi import HTTPException, status
from redis.asyncio import Redis

WINDOW_SECONDS = 60


class RateLimiter:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.ns = "{" + namespace + "}"

    def _key(self, bucket: str, who: str) -> str:
        return f"{self.ns}:ratelimit:{bucket}:{who}:{int(time.time() // WINDOW_SECONDS)}"

    async def count(self, bucket: str, who: str) -> int:
        return int(await self.redis.get(self._key(bucket, who)) or 0)

    async def hit(self, bucket: str, who: str) -> int:
        """Count one event in the current window; returns the window's count."""
        key = self._key(bucket, who)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS * 2)
            count, _ = await pipe.execute()
        return int(count)


def too_many(what: str) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"too many {what}; retry after {WINDOW_SECONDS} s",
        headers={"Retry-After": str(WINDOW_SECONDS)},
    )
