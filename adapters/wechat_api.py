"""wechatpy's synchronous clients, made fit for an asyncio server with several processes.

- Calls run in worker threads (`WechatApi.call`), never on the event loop.
- Every client points at the configured API base (tests: a local fake server).
- The access token lives in Redis, shared by all server processes: fetched under a Redis lock
  by whoever needs it first, re-read by the others. We use our own tiny session storage on
  the app's asyncio Redis client (wechatpy's RedisStorage wants a synchronous client, and the
  embedded store is in-process asyncio only).
- An answer of 40001/42001 (token expired or revoked) refreshes the token once and retries
  the call once; wechatpy's own auto-retry loops without bound, so it is switched off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import redis.asyncio as aioredis
from wechatpy import WeChatClient
from wechatpy.enterprise import WeChatClient as WeComClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from bot.kv import PREFIX

log = logging.getLogger(__name__)
T = TypeVar("T")
TOKEN_ERRORS = {40001, 40014, 42001}  # invalid credential, invalid token, token expired
LOCK_TTL_S = 10
TOKEN_MARGIN_S = 300  # drop a token from Redis this long before WeChat expires it
CALL_TIMEOUT_S = 10
LOCAL_COPY_S = 60  # well inside the 5 minutes WeChat keeps a replaced token valid


class LoopRedisStorage(SessionStorage):
    """wechatpy session storage on an asyncio Redis client, used from worker threads: each
    call hops onto the event loop that owns the Redis connection.

    What was read is kept in this process for LOCAL_COPY_S, so a send does not hop threads
    and ask Redis for the token each time. Safe because WeChat keeps a replaced token valid
    for 5 minutes, and a token WeChat refuses is dropped here at once (`forget_local`)."""

    def __init__(self, redis: aioredis.Redis, loop: asyncio.AbstractEventLoop,
                 prefix: str = f"{PREFIX}wxtoken") -> None:
        self.redis = redis
        self.loop = loop
        self.prefix = prefix
        self._local: dict[str, tuple[float, Any]] = {}  # key → (read at, value)

    def _run(self, call: Awaitable[T]) -> T:
        # redis-py types its commands Awaitable (one signature for the sync and asyncio
        # clients); on redis.asyncio.Redis (and fakeredis's subclass) they are coroutines.
        coro = cast(Coroutine[Any, Any, T], call)
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is self.loop:
                coro.close()
                raise AssertionError("wechatpy called on the event loop: use WechatApi.call")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(LOCK_TTL_S * 2)

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    def get(self, key: str, default: Any = None) -> Any:
        kept = self._local.get(key)
        if kept is not None and time.monotonic() - kept[0] < LOCAL_COPY_S:
            return kept[1]
        raw = self._run(self.redis.get(self._key(key)))
        if raw is None:
            self._local.pop(key, None)
            return default
        value = json.loads(raw)
        self._local[key] = (time.monotonic(), value)
        return value

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        if value is None:
            return
        if ttl:
            ttl = max(int(ttl) - TOKEN_MARGIN_S, 60) if ttl > 2 * TOKEN_MARGIN_S else int(ttl)
        self._run(self.redis.set(self._key(key), json.dumps(value), ex=ttl or None))
        self._local[key] = (time.monotonic(), value)

    def delete(self, key: str) -> None:
        self.forget_local(key)
        self._run(self.redis.delete(self._key(key)))

    def forget_local(self, key: str) -> None:
        """The next `get` asks Redis (another process may have a newer token there)."""
        self._local.pop(key, None)

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """A cross-process lock (SET NX EX); waits for the holder, at most LOCK_TTL_S."""
        name, me = self._key(f"{key}:lock"), uuid.uuid4().hex
        deadline = time.monotonic() + LOCK_TTL_S
        while not self._run(self.redis.set(name, me, nx=True, ex=LOCK_TTL_S)):
            if time.monotonic() > deadline:
                break  # a dead holder: its lock expires anyway; go ahead
            time.sleep(0.05)
        try:
            yield
        finally:
            if self._run(self.redis.get(name)) == me:
                self._run(self.redis.delete(name))


class _SharedToken:
    """Mixin for wechatpy clients: the token is fetched once for all processes."""

    session: LoopRedisStorage
    access_token_key: str
    expires_at: int | None
    token_url: str

    def token_params(self) -> dict[str, str]:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by wechatpy's client, after this mixin in the MRO
        def _fetch_access_token(self, url: str, params: dict[str, str]) -> dict[str, Any]: ...

    def ensure_token(self, stale: str | None) -> str:
        """A token other than `stale`: someone else's fresh one, or one we fetch."""
        with self.session.lock(self.access_token_key):
            self.session.forget_local(self.access_token_key)  # ask Redis, under the lock
            current = self.session.get(self.access_token_key)
            if current and current != stale:
                return current
            result = self._fetch_access_token(url=self.token_url, params=self.token_params())
            self.expires_at = None  # trust the Redis copy (its TTL ends before WeChat's)
            return result["access_token"]

    def fetch_access_token(self) -> dict[str, Any]:
        return {"access_token": self.ensure_token(None)}


class OfficialClient(_SharedToken, WeChatClient):
    """Official account or mini-program (same API host, different app id)."""

    def __init__(self, app_id: str, secret: str, base_url: str,
                 storage: LoopRedisStorage) -> None:
        super().__init__(app_id, secret, session=storage, timeout=CALL_TIMEOUT_S,
                         auto_retry=False)
        base = base_url.rstrip("/") + "/"
        self.API_BASE_URL = base + "cgi-bin/"
        self.wxa.API_BASE_URL = base  # code2session and wxacode live outside cgi-bin/
        self.token_url = base + "cgi-bin/token"

    def token_params(self) -> dict[str, str]:
        return {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}


class WorkClient(_SharedToken, WeComClient):
    """The WeCom (企业微信) self-built app."""

    def __init__(self, corp_id: str, secret: str, base_url: str,
                 storage: LoopRedisStorage) -> None:
        super().__init__(corp_id, secret, session=storage, timeout=CALL_TIMEOUT_S,
                         auto_retry=False)
        base = base_url.rstrip("/") + "/"
        self.API_BASE_URL = base + "cgi-bin/"
        self.token_url = base + "cgi-bin/gettoken"

    def token_params(self) -> dict[str, str]:
        return {"corpid": self.corp_id, "corpsecret": self.secret}


Client = OfficialClient | WorkClient


class WechatApi:
    """Run wechatpy calls off the event loop, with one token refresh on 40001."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def call(self, fn: Callable[[Any], T]) -> T:
        return await asyncio.to_thread(self._call, fn)

    def _call(self, fn: Callable[[Any], T]) -> T:
        used = self.client.access_token  # fetched here when missing
        try:
            return fn(self.client)
        except WeChatClientException as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.info("WeChat rejected the access token (%s): refreshing once", exc.errcode)
        self.client.ensure_token(used)
        return fn(self.client)


def official_api(app_id: str, secret: str, base_url: str, redis: aioredis.Redis) -> WechatApi:
    """Call from inside the running event loop that owns `redis`."""
    storage = LoopRedisStorage(redis, asyncio.get_running_loop())
    return WechatApi(OfficialClient(app_id, secret, base_url, storage))


def work_api(corp_id: str, secret: str, base_url: str, redis: aioredis.Redis) -> WechatApi:
    storage = LoopRedisStorage(redis, asyncio.get_running_loop())
    return WechatApi(WorkClient(corp_id, secret, base_url, storage))


def media_bytes(result: Any) -> bytes:
    """wechatpy hands back the requests Response for binary answers, a dict for errors."""
    if isinstance(result, dict):
        raise WeChatClientException(result.get("errcode"), result.get("errmsg"))
    return result.content
