"""Redis: dialog state with a TTL and message dedupe, on a real server or the embedded store.

With no redis.url the embedded default is fakeredis, an in-process implementation of the same
redis-py interface: right for the one-process demo and never used with several workers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, overload

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

PREFIX = "gridbot:"
# Plain SETs that ride along in another call's round trip: key → (value, TTL in seconds).
Remember = Mapping[str, tuple[str, int]]


@overload
def as_text(reply: bytes | str) -> str: ...
@overload
def as_text(reply: bytes | str | None) -> str | None: ...
def as_text(reply: bytes | str | None) -> str | None:
    """A Redis reply as text. redis-py types replies `bytes | str` whatever the client;
    ours decode (`connect` sets decode_responses=True), so this only narrows the type."""
    return reply.decode() if isinstance(reply, bytes) else reply


def queue_sets(pipe: Any, remember: Remember | None) -> int:
    """Add `remember`'s SETs to a pipeline; how many replies they will take."""
    for key, (value, ttl_s) in (remember or {}).items():
        pipe.set(key, value, ex=ttl_s)
    return len(remember or {})


def connect(url: str) -> aioredis.Redis:
    if url:
        # A Redis restart takes a second or two: ride it out instead of failing the request
        # that happens to hold a pooled connection (redis-py's default gives up in ~50 ms).
        retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=6)
        return aioredis.from_url(url, decode_responses=True, retry=retry)
    import fakeredis  # only the embedded path needs it

    return fakeredis.FakeAsyncRedis(decode_responses=True)


class DialogStore:
    """Per (channel, user) conversation state, forgotten after `ttl_s` of silence."""

    def __init__(self, redis: aioredis.Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    @staticmethod
    def _key(channel: str, user: str) -> str:
        return f"{PREFIX}dialog:{channel}:{user}"

    async def load(self, channel: str, user: str) -> dict[str, Any]:
        raw = await self.redis.get(self._key(channel, user))
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return {}  # a corrupt state restarts the conversation rather than failing it

    async def save(self, channel: str, user: str, state: Mapping[str, Any]) -> None:
        if not state:
            await self.clear(channel, user)
            return
        data = json.dumps(state, ensure_ascii=False)
        await self.redis.set(self._key(channel, user), data, ex=self.ttl_s)

    async def clear(self, channel: str, user: str) -> None:
        await self.redis.delete(self._key(channel, user))


class Deduper:
    """Remembers message ids for a while so channel retries are processed once."""

    def __init__(self, redis: aioredis.Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    @staticmethod
    def key(channel: str, message_id: str) -> str:
        return f"{PREFIX}seen:{channel}:{message_id}"

    async def first_time(self, channel: str, message_id: str,
                         remember: Remember | None = None) -> bool:
        """`remember` ({key: (value, ttl_s)}): plain SETs sent in the same round trip."""
        key = self.key(channel, message_id)
        if not remember:
            return bool(await self.redis.set(key, "1", nx=True, ex=self.ttl_s))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(key, "1", nx=True, ex=self.ttl_s)
            queue_sets(pipe, remember)
            return bool((await pipe.execute())[0])

    async def forget(self, channel: str, message_id: str) -> None:
        """Let a message id through again (its processing failed and nothing was kept)."""
        await self.redis.delete(self.key(channel, message_id))
