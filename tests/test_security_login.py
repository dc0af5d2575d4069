"""Console sign-in under attack, on both storage set-ups: a burst of wrong passwords is
counted before any hashing and never hashes on the event loop (the server keeps answering),
the hashing queue is bounded, the limits hold per account and per client address, the
client address comes from a trusted proxy only (for the API's per-address limit too), and a
`next` or CSRF value with control or non-ASCII characters is a clean answer, not a 500."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

import bot.staff
from bot.config import ConsoleConfig, LimitsConfig, ServerConfig
from bot.services import Services
from shell.app import create_app
from tests.test_console import PASSWORD, Console, _audit, _users

BURST = 40


class CountingVerifier:
    """Wraps bot.staff._verify: counts password checks, notes any made on an event-loop
    thread, and holds the ones made in worker threads until `release` is set, so a test
    can look at the server while checks are in progress."""

    def __init__(self, real: Callable[[str, str], bool]) -> None:
        self.real = real
        self.lock = threading.Lock()
        self.calls = 0
        self.on_loop = 0
        self.active = 0
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, stored: str, password: str) -> bool:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        with self.lock:
            self.calls += 1
            if on_loop:
                self.on_loop += 1
            else:
                self.active += 1
        if on_loop:  # today's code: argon2 blocks the loop; never hold it here
            return self.real(stored, password)
        self.started.set()
        try:
            self.release.wait(30)
            return self.real(stored, password)
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture
def verifier(monkeypatch: pytest.MonkeyPatch) -> CountingVerifier:
    counting = CountingVerifier(bot.staff._verify)
    monkeypatch.setattr(bot.staff, "_verify", counting)
    yield counting
    counting.release.set()  # never leave a worker thread waiting


async def _login_token(c: Console) -> str:
    page = await c.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(True))
    assert token is not None
    return token.group(1)


async def _post_login(c: Console, token: str, username: str, password: str,
                      headers: dict[str, str] | None = None, **extra: str) -> Any:
    return await c.client.post("/console/login", form={
        "username": username, "password": password, "csrf_token": token, **extra},
        headers=headers or {}, scope_base=c.scope)


async def _attempt(c: Console, username: str, password: str,
                   headers: dict[str, str] | None = None, **extra: str) -> int:
    """One login as a browser makes it: the form (a fresh double-submit token), then the
    POST. Every rendering of the form rotates the token."""
    r = await _post_login(c, await _login_token(c), username, password, headers, **extra)
    return r.status_code


async def _until(done: Callable[[], bool], seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)


def _app(services: Services, **console: Any):
    config = services.config.model_copy(update={"console": ConsoleConfig(**console)})
    return create_app(config, services, background=False)


# -- A: a burst of wrong passwords ------------------------------------------------------------

async def test_a_burst_is_counted_before_hashing_and_the_server_keeps_answering(
        services: Services, verifier: CountingVerifier) -> None:
    await _users(services)
    app = _app(services)  # the shipped limits: 10 per account, 30 per address
    limit = services.config.console.login_attempts
    # One browser per attempt (each with its form token), all from one address.
    browsers = [Console(app, ip="10.5.5.5") for _ in range(BURST)]
    tokens = [await _login_token(b) for b in browsers]
    c = browsers[0]
    burst = asyncio.ensure_future(asyncio.gather(*(
        _post_login(b, token, "op", f"guess-{i}")
        for i, (b, token) in enumerate(zip(browsers, tokens, strict=True)))))
    # Wait for a password check to be running (in a worker thread), then ask /healthz.
    await _until(lambda: verifier.started.is_set() or burst.done())
    health = await asyncio.wait_for(c.client.get("/healthz"), 20)
    checking_meanwhile = verifier.active
    burst_running = not burst.done()
    verifier.release.set()
    answers = await asyncio.wait_for(burst, 60)

    assert health.status_code == 200
    # /healthz answered while passwords were being checked: hashing is off the event loop.
    assert checking_meanwhile > 0 and burst_running
    assert verifier.on_loop == 0
    # Counted before checking: at most the limit of the 40 were hashed, the rest refused.
    statuses = [r.status_code for r in answers]
    assert 0 < verifier.calls <= limit
    assert statuses.count(401) == verifier.calls
    assert statuses.count(429) == BURST - verifier.calls
    assert len(await _audit(services, "login_failed")) == verifier.calls
    # The account is locked for this window, even with the right password.
    assert (await Console(app, ip="10.4.4.4").login("op")).status_code == 429


async def test_a_full_hashing_queue_refuses_at_once(services: Services,
                                                    verifier: CountingVerifier) -> None:
    await _users(services)
    # Generous limits: only the queue can refuse here (1 check running, 1 waiting).
    app = _app(services, login_attempts=100, login_attempts_per_ip=100,
               login_hash_workers=1, login_queue=1)
    browsers = [Console(app, ip="10.5.5.6") for _ in range(10)]
    tokens = [await _login_token(b) for b in browsers]
    attempts = [asyncio.ensure_future(_post_login(b, token, "disp", f"guess-{i}"))
                for i, (b, token) in enumerate(zip(browsers, tokens, strict=True))]
    # While the first check is held, everything beyond the queue is answered already.
    await _until(lambda: sum(a.done() for a in attempts) >= 8)
    refused_early = sum(a.done() for a in attempts)
    verifier.release.set()
    statuses = sorted([(await a).status_code for a in attempts])
    assert refused_early >= 8
    assert verifier.calls == 2 and verifier.on_loop == 0
    assert statuses == [401, 401] + [429] * 8


async def test_limits_per_account_and_per_address(services: Services,
                                                  verifier: CountingVerifier) -> None:
    verifier.release.set()  # no holding in this test
    await _users(services)
    app = _app(services, login_attempts=3, login_attempts_per_ip=5)
    attacker = Console(app, ip="10.6.6.6")
    for username in ("op", "op", "op", "disp", "disp"):
        assert await _attempt(attacker, username, "x") == 401
    # The address is spent: it cannot go on to more accounts, not even with a password…
    assert await _attempt(attacker, "sup", "x") == 429
    assert await _attempt(attacker, "city", PASSWORD) == 429
    assert verifier.calls == 5
    # …and what it could not try did not count against those accounts: one address does
    # not lock everyone out.
    assert (await Console(app, ip="10.1.1.1").login("sup")).status_code == 302
    assert (await Console(app, ip="10.1.1.2").login("city")).status_code == 302
    assert (await Console(app, ip="10.1.1.3").login("disp")).status_code == 302
    assert (await Console(app, ip="10.1.1.4").login("op")).status_code == 429  # 3 used

    # One account is not guessed at from many addresses either.
    before = verifier.calls
    for n in range(8):
        expected = 401 if n < 3 else 429
        assert await _attempt(Console(app, ip=f"10.2.0.{n + 1}"), "water", "x") == expected
    assert verifier.calls - before == 3

    # A successful login gives its attempt back: an office behind one address signs in
    # every morning without locking itself out.
    for _ in range(6):  # six browsers in one office (a signed-in page is no login form)
        assert (await Console(app, ip="10.3.3.3").login("sup")).status_code == 302


async def test_limits_follow_the_client_behind_a_trusted_proxy(
        services: Services, verifier: CountingVerifier) -> None:
    verifier.release.set()
    await _users(services)
    config = services.config.model_copy(update={
        "console": ConsoleConfig(login_attempts=100, login_attempts_per_ip=2),
        "server": ServerConfig(trusted_proxies=["10.0.0.1"])})
    app = create_app(config, services, background=False)
    proxy = Console(app, ip="10.0.0.1")

    async def via_proxy(client: str, username: str) -> int:
        return await _attempt(proxy, username, "x",
                              headers={"X-Forwarded-For": f"6.6.6.6, {client}"})

    # Each client behind the proxy has its own allowance (the proxy is not one client)…
    assert [await via_proxy("198.51.100.7", u) for u in ("op", "disp", "sup")] == \
        [401, 401, 429]
    assert await via_proxy("198.51.100.8", "sup") == 401
    failed = await _audit(services, "login_failed")
    assert {a.ip for a in failed} == {"198.51.100.7", "198.51.100.8"}
    # …and a client that is not the proxy cannot pick its address with the header.
    direct = Console(app, ip="203.0.113.50")
    assert [await _attempt(direct, "city", "x", headers={"X-Forwarded-For": f"192.0.2.{n}"})
            for n in range(3)] == [401, 401, 429]


async def test_client_address_reads_only_what_a_trusted_proxy_wrote(
        services: Services) -> None:
    from adapters.guard import client_address

    proxied = services.config.model_copy(update={"server": ServerConfig(
        trusted_proxies=["10.0.0.1", "fd00::/8"])})
    forwarded = services.config.model_copy(update={"server": ServerConfig(
        trusted_proxies=["10.0.0.1"], proxy_header="Forwarded")})

    async def address(config: Any, peer: str, **headers: str) -> str:
        app = create_app(config, services, background=False)
        # Quart's ASGI layer writes the peer into Remote-Addr; a bare request context
        # needs it by hand.
        async with app.test_request_context("/api/v1/grids",
                                            headers={**headers, "Remote-Addr": peer}):
            return client_address()

    assert await address(services.config, "127.0.0.1", **{"X-Forwarded-For": "1.2.3.4"}) \
        == "127.0.0.1"
    assert await address(proxied, "203.0.113.5", **{"X-Forwarded-For": "1.1.1.1"}) \
        == "203.0.113.5"
    assert await address(proxied, "10.0.0.1", **{"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}) \
        == "198.51.100.7"
    assert await address(proxied, "10.0.0.1",
                         **{"X-Forwarded-For": "6.6.6.6, 198.51.100.7, fd00::2"}) \
        == "198.51.100.7"
    assert await address(proxied, "10.0.0.1", **{"X-Forwarded-For": "[2001:db8::1]:443"}) \
        == "2001:db8::1"
    assert await address(proxied, "10.0.0.1", **{"X-Forwarded-For": "198.51.100.9:5555"}) \
        == "198.51.100.9"
    assert await address(proxied, "10.0.0.1") == "10.0.0.1"
    assert await address(proxied, "10.0.0.1", **{"X-Forwarded-For": "nonsense"}) == "10.0.0.1"
    assert await address(forwarded, "10.0.0.1", Forwarded='for=192.0.2.60;proto=http, '
                         'for="[2001:db8:cafe::17]:4711"') == "2001:db8:cafe::17"


async def test_the_api_address_limit_uses_the_same_client_address(services: Services) -> None:
    config = services.config  # the limits are read from the services' config
    config.server = ServerConfig(trusted_proxies=["127.0.0.1"])
    config.limits = LimitsConfig(per_ip_per_minute=2, exempt_ips=[])
    config.api = config.api.model_copy(update={"keys": ["k-0123456789abcdef"]})
    client = create_app(config, services, background=False).test_client()
    key = {"X-API-Key": "k-0123456789abcdef"}

    async def grids(peer: str, forwarded_for: str) -> int:
        r = await client.get("/api/v1/grids", headers={**key, "X-Forwarded-For": forwarded_for},
                             scope_base={"client": (peer, 5000)})
        return r.status_code

    assert [await grids("127.0.0.1", "198.51.100.1") for _ in range(3)] == [200, 200, 429]
    assert await grids("127.0.0.1", "198.51.100.2") == 200  # another client behind it
    # Not from the proxy: the header is ignored, so changing it does not reset the count.
    assert [await grids("203.0.113.9", f"192.0.2.{n}") for n in range(3)] == [200, 200, 429]


# -- B: next and CSRF values ------------------------------------------------------------------

async def test_next_with_cr_lf_and_non_ascii_tokens_are_no_500(services: Services) -> None:
    await _users(services)
    app = _app(services)
    c = Console(app)
    page = await c.get("/console/login?next=/console/cases%0D%0ASet-Cookie:%20evil=1")
    assert page.status_code == 200
    html = await page.get_data(True)
    assert "evil" not in html and 'name="next" value="/console/"' in html
    for bad in ("/console/cases\r\nSet-Cookie: evil=1", "/console/\nx", "/console/\x00"):
        c = Console(app)
        r = await _post_login(c, await _login_token(c), "op", PASSWORD, next=bad)
        assert r.status_code == 302, bad
        assert r.headers["Location"] == "/console/"
        assert "evil" not in str(r.headers)
    c = Console(app)
    ok = await _post_login(c, await _login_token(c), "op", PASSWORD,
                           next="/console/cases?status=filed")
    assert ok.status_code == 302 and ok.headers["Location"] == "/console/cases?status=filed"
    c = Console(app)
    r = await _post_login(c, await _login_token(c), "op", PASSWORD, next="/console/cases?q=路灯")
    assert r.status_code == 302 and r.headers["Location"] == "/console/cases?q=%E8%B7%AF%E7%81%AF"

    # A login CSRF field or header with characters outside ASCII is refused, not a 500.
    fresh = Console(app)
    await _login_token(fresh)
    r = await fresh.client.post("/console/login", form={
        "username": "op", "password": PASSWORD, "csrf_token": "令牌"}, scope_base=fresh.scope)
    assert r.status_code == 403
    signed_in = Console(app)
    assert (await signed_in.login("op")).status_code == 302
    r = await signed_in.post("/console/api/suggest", {"text": "路灯不亮"},
                             csrf="\u00e4\u00f6\u00fc")
    assert r.status_code == 403
