"""Inbound guard: per-user and per-address rate limits (in Redis, so they hold across server
processes) and the API's security headers.

HTTP callers over a limit get 429 with Retry-After. Chat channels ask `chat_turn_allowed`
before running the dialog and send the polite catalogue message (`guard.slow_down`) once per
window; further messages in that window are dropped silently so a flood gets no echo.
Webhook routes (/telegram, /wechat, /wecom) are not limited per address: all their traffic
comes from the platform's few servers, so they are limited per user after parsing.

The client's address (`client_address`) is the peer's, or — only for a request from one of
`server.trusted_proxies` — the one that proxy wrote into `server.proxy_header`; the console's
login limits use the same function. `check_api_request` keeps browsers out of /api/*: JSON
bodies only, no foreign Origin, no unknown Host (a DNS-rebinding page names its own host).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from quart import Quart, Response, jsonify, request
from redis.exceptions import NoScriptError

from adapters import app_state
from adapters.json_body import json_or_none
from bot.config import Config, LimitsConfig
from bot.kv import PREFIX, Remember, queue_sets
from bot.services import Services

WINDOW_S = 60
# Endpoints that count their user's hit themselves (see limit_api_user).
SELF_LIMITED = frozenset({"api_v1.post_report"})
# The machine-facing APIs: the chat/report API and Open311 (its GETs are public).
API_PREFIXES = ("/api/", "/open311/")
# Answers that carry case data or personal data must not sit in shared caches.
NO_STORE_EXCEPT = ("/api/v1/grids", "/api/v1/openapi.json", "/api/openapi.json")
# Methods whose body /api/* reads: JSON only (a browser can send text/plain, form and
# multipart bodies cross-site without asking; JSON it cannot).
BODY_METHODS = ("POST", "PUT", "PATCH")
# /api routes that take an upload by design (multipart, or JSON without photos).
MULTIPART_ENDPOINTS = frozenset({"wechat_mp.post_report", "wechat_mp.add_photos",
                                 "wechat_mp.on_spot"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int  # hits in the current window, this one included
    retry_after_s: int  # 0 when allowed
    limit: int

    @property
    def first_refusal(self) -> bool:
        return not self.allowed and self.count == self.limit + 1


# One hit: INCR the window's key and EXPIRE it, as one command. Every request to the API
# makes one, and redis-py's pipeline machinery cost more CPU than the two commands in it.
_HIT = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return count
"""
_HIT_SHA = hashlib.sha1(_HIT.encode()).hexdigest()


class RateLimiter:
    """Fixed one-minute windows: INCR a key named after the window, expire it after.

    Both in one round trip without MULTI/EXEC: a small script when nothing rides along
    (Redis runs a script whole), else a pipeline (Redis runs a connection's commands in
    order, and the EXPIRE that follows every INCR is all the atomicity a counter needs)."""

    def __init__(self, redis: aioredis.Redis, window_s: int = WINDOW_S) -> None:
        self.redis = redis
        self.window_s = window_s

    async def hit(self, kind: str, ident: str, limit: int,
                  remember: Remember | None = None) -> Verdict:
        """Count one hit in the current window. `remember` ({key: (value, ttl_s)}) rides
        along as plain SETs in the same round trip."""
        now = time.time()
        window = int(now // self.window_s)
        # Hashed: user ids (openids, phone-like ids) and addresses stay out of Redis keys.
        digest = hashlib.blake2b(ident.encode("utf-8", "replace"), digest_size=12).hexdigest()
        key = f"{PREFIX}rl:{kind}:{digest}:{window}"
        if remember:
            async with self.redis.pipeline(transaction=False) as pipe:
                remembered = queue_sets(pipe, remember)
                pipe.incr(key)
                pipe.expire(key, self.window_s + 1)
                count = int((await pipe.execute())[remembered])
        else:
            count = int(await self._count(key))
        if count <= limit:
            return Verdict(True, count, 0, limit)
        retry = max(1, math.ceil((window + 1) * self.window_s - now))
        return Verdict(False, count, retry, limit)

    async def _count(self, key: str) -> int:
        """The hit script by its digest; loaded first when Redis does not have it (a new
        or restarted server)."""
        ttl = self.window_s + 1
        try:
            return int(await self.redis.evalsha(_HIT_SHA, 1, key, ttl))
        except NoScriptError:
            await self.redis.script_load(_HIT)
            return int(await self.redis.evalsha(_HIT_SHA, 1, key, ttl))


def limiter(services: Services) -> RateLimiter:
    return RateLimiter(services.redis)


async def user_verdict(services: Services, channel: str, user: str,
                       remember: Remember | None = None) -> Verdict:
    """The user's hit (a report's id is kept with its filing, not here: bot.cases)."""
    limits: LimitsConfig = services.config.limits
    return await limiter(services).hit(f"user:{channel}", user, limits.per_user_per_minute,
                                       remember)


async def chat_turn_allowed(services: Services, channel: str, user: str,
                            remember: Remember | None = None) -> tuple[bool, bool]:
    """(allowed, tell): run the dialog if allowed; otherwise send `guard.slow_down` only
    when `tell` (the first refused message of the window). `remember`: SETs to make in the
    same round trip (e.g. the person's language)."""
    verdict = await user_verdict(services, channel, user, remember)
    return verdict.allowed, verdict.first_refusal


# -- the client's address ---------------------------------------------------------------------

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    """`server.trusted_proxies`, parsed once (config validation refused bad entries)."""
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def _ip(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return address


def _trusted(address: IpAddress | None, networks: tuple[IpNetwork, ...]) -> bool:
    return address is not None and any(address in n for n in networks)


def _hop(text: str, forwarded: bool) -> IpAddress | None:
    """One hop of X-Forwarded-For (`1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `::1`) or of
    RFC 7239 Forwarded (`for=1.2.3.4;proto=https`, `for="[::1]:80"`), as an address."""
    text = text.strip()
    if forwarded:
        params = dict(p.strip().partition("=")[::2] for p in text.split(";"))
        text = next((v for k, v in params.items() if k.strip().lower() == "for"), "")
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    return _ip(text)


def client_address(config: Config | None = None) -> str:
    """The client's address for limits and logs. The peer's address, unless the peer is one
    of `server.trusted_proxies`: then the right-most address in `server.proxy_header` that is
    not a trusted proxy itself — the address the last trusted proxy saw connecting. Entries
    further left were written by the client and are never read, so a client cannot choose
    its address; a header from anyone but a trusted proxy is ignored."""
    peer = request.remote_addr or ""
    server = (config or app_state.config()).server
    if not server.trusted_proxies:
        return peer
    networks = _networks(tuple(server.trusted_proxies))
    if not _trusted(_ip(peer), networks):
        return peer
    forwarded = server.proxy_header.lower() == "forwarded"
    hops = [hop for value in request.headers.getlist(server.proxy_header)
            for hop in value.split(",") if hop.strip()]
    address: IpAddress | None = None
    for hop in reversed(hops):
        address = _hop(hop, forwarded)
        if address is None:  # not an address where our proxy writes one: trust nothing
            return peer
        if not _trusted(address, networks):
            return str(address)
    return str(address) if address is not None else peer  # only trusted hops


def _exempt(address: str | None, limits: LimitsConfig) -> bool:
    return address is not None and _exempt_address(address, tuple(limits.exempt_ips))


@functools.lru_cache(maxsize=256)
def _exempt_address(address: str, exempt_ips: tuple[str, ...]) -> bool:
    """Cached: asked on every API request, and a server sees few client addresses."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip in _parsed(exempt_ips)


@functools.lru_cache(maxsize=8)
def _parsed(addresses: tuple[str, ...]) -> frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The configured exempt addresses, parsed once (not on every request); entries that are
    not addresses are ignored."""
    parsed = set()
    for text in addresses:
        try:
            parsed.add(ipaddress.ip_address(text))
        except ValueError:
            continue
    return frozenset(parsed)


def too_many(verdict: Verdict, what: str) -> Response:
    response = jsonify({"error": f"too many requests {what}; retry in "
                                 f"{verdict.retry_after_s} s",
                        "retry_after_s": verdict.retry_after_s})
    response.status_code = 429
    response.headers["Retry-After"] = str(verdict.retry_after_s)
    return response


async def limit_address() -> Response | None:
    """Per client address, on every /api/* and /open311/* request (before authentication:
    it also slows down key guessing)."""
    if not request.path.startswith(API_PREFIXES):
        return None
    services: Services | None = app_state.services()
    if services is None:
        return None
    limits = services.config.limits
    address = client_address() or "unknown"
    if _exempt(address, limits):
        return None
    verdict = await limiter(services).hit("ip", address, limits.per_ip_per_minute)
    return None if verdict.allowed else too_many(verdict, "from this address")


def _refused(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def _host_name(header: str) -> str:
    """The host of a Host header, lower-case, without port, brackets or a final dot."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def host_allowed(config: Config, header: str) -> bool:
    """Loopback names, server.host, the address the request came in on (an IP literal, which
    no rebinding page can send) and `api.allowed_hosts` (".example.org": and subdomains)."""
    host = _host_name(header)
    if not host:
        return False
    allowed = config.api.allowed_hosts
    if "*" in allowed or host in LOOPBACK_HOSTS or host in allowed:
        return True
    if host == _host_name(config.server.host):
        return True
    local = request.scope.get("server")  # the socket the request came in on
    if local and local[0] and host == _host_name(str(local[0])) and _ip(host) is not None:
        return True
    return any(a.startswith(".") and (host == a[1:] or host.endswith(a)) for a in allowed)


def _json_body(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json"))


async def check_api_request() -> Response | None:
    """Before every /api/* request: a known Host, no foreign Origin, a JSON body. With no
    api.keys loopback clients need no key, so without this a web page could use the API
    through the browser of someone on this machine (a form or text/plain POST needs no
    CORS preflight; DNS rebinding gets around the same-origin rule but not the Host check).
    Open311 (/open311, form-encoded by its standard) and the multipart upload keep theirs."""
    if not request.path.startswith("/api/"):
        return None
    config: Config = app_state.config()
    if not host_allowed(config, request.headers.get("Host", "")):
        return _refused(400, "unknown Host header: add the name to api.allowed_hosts")
    origin = request.headers.get("Origin")
    if origin is not None and origin.strip().rstrip("/").lower() not in \
            config.api.allowed_origins:
        return _refused(403, "requests from this Origin are not allowed "
                             "(api.allowed_origins)")
    if request.method in BODY_METHODS:
        mimetype = request.mimetype
        upload = request.endpoint in MULTIPART_ENDPOINTS and mimetype == "multipart/form-data"
        if not upload and not _json_body(mimetype):
            return _refused(400, "send the body as JSON (Content-Type: application/json)")
    return None


async def limit_api_user() -> Response | None:
    """Per user, on the chat API's posts; runs after the API's authentication so an
    unauthenticated caller cannot spend a user's allowance. Routes in SELF_LIMITED count
    the hit themselves (`user_verdict`)."""
    if request.method != "POST" or request.endpoint in SELF_LIMITED:
        return None
    data = await json_or_none()  # not JSON we can read: the route answers 400
    user = data.get("user") if isinstance(data, dict) else None
    if not isinstance(user, str) or not user:
        return None  # the route answers 400 for that
    verdict = await user_verdict(app_state.services(), "http", user)
    return None if verdict.allowed else too_many(verdict, "for this user")


async def security_headers(response: Response) -> Response:
    """Each header unless the route set its own: one pass over the response's headers
    (werkzeug's setdefault scans them twice per header, on every API response)."""
    path = request.path
    if path.startswith(API_PREFIXES):
        headers = response.headers
        present = {name.lower() for name, _ in headers.items()}
        for name, value in SECURITY_HEADERS.items():
            if name.lower() not in present:
                headers.add(name, value)
        if path not in NO_STORE_EXCEPT and "cache-control" not in present:
            headers.add("Cache-Control", "no-store")
    return response


def install(app: Quart) -> None:
    """Register the guard on the app (one line in shell.app.create_app)."""
    app.before_request(limit_address)
    app.before_request(check_api_request)  # before the blueprints' own (authentication)
    # After the blueprint's own before_request (authenticate), which is registered first.
    app.before_request_funcs.setdefault("api_v1", []).append(limit_api_user)
    app.after_request(security_headers)
