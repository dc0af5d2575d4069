"""adapters/console/auth.py: the console's sign-in pieces taken one by one — constant-time
secret comparison, session keys that hold no token, the login form's redirect target,
the content security policy, role names, and the bounded queue of password checks."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart

from adapters.console import auth
from bot.kv import PREFIX
from bot.services import Services
from shell.app import create_app

sqlite_only = pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)


def test_same_secret_takes_any_text() -> None:
    assert auth.same_secret("token-1", "token-1")
    assert not auth.same_secret("token-1", "token-2")
    assert not auth.same_secret("", "token-1")
    # A header or form field may hold anything: no TypeError on non-ASCII or lone surrogates.
    assert auth.same_secret("令牌", "令牌") and not auth.same_secret("令牌", "token")
    assert not auth.same_secret("\ud800", "token")


def test_redis_keeps_a_session_under_the_tokens_digest_not_the_token() -> None:
    key = auth._session_key("the-cookie-token")
    assert key == f"{PREFIX}staffsess:{hashlib.sha256(b'the-cookie-token').hexdigest()}"
    assert "the-cookie-token" not in key


def test_unknown_roles_are_refused_when_a_view_is_declared() -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        auth.require_staff("operator", "janitor")
    assert callable(auth.require_staff("operator", "supervisor"))


@pytest.fixture
async def app(services: Services) -> AsyncIterator[Quart]:
    yield create_app(services.config, services, background=False)


NEXT = [
    ("/console/cases?status=open", "/console/cases?status=open"),
    ("/console/cases/案件", "/console/cases/%E6%A1%88%E4%BB%B6"),  # a Location is ASCII
    ("//evil.example/console/", "/console/"),  # no open redirect, protocol-relative or not
    ("https://evil.example/console/", "/console/"),
    ("/console/\\evil.example", "/console/"),
    ("/console/x\r\nSet-Cookie: a=b", "/console/"),  # no header splitting
    ("/api/v1/cases", "/console/"),  # console paths only
    ("/console/" + "a" * 2000, "/console/"),
    (None, "/console/"),
]


@sqlite_only
async def test_after_login_only_console_paths_of_this_site(app: Quart) -> None:
    async with app.test_request_context("/console/login"):
        assert [auth._safe_next(target) for target, _ in NEXT] == [x for _, x in NEXT]


TILES = [
    ("", "img-src 'self' data: blob:;"),
    ("https://{s}.tile.example.org/{z}/{x}/{y}.png",
     "img-src 'self' data: blob: https://*.tile.example.org;"),
    ("https://tiles.example.org/{z}/{x}/{y}.png",
     "img-src 'self' data: blob: https://tiles.example.org;"),
    ("javascript:alert(1)//{z}", "img-src 'self' data: blob:;"),  # only web addresses
]


@sqlite_only
async def test_the_policy_allows_images_from_the_tile_host_alone(services: Services) -> None:
    for tiles, img_src in TILES:
        services.config.console = services.config.console.model_copy(
            update={"map_tiles": tiles})
        app = create_app(services.config, services, background=False)
        async with app.app_context():
            policy = auth._csp()
        assert img_src in policy, tiles
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


@sqlite_only
async def test_login_limit_keys_name_neither_address_nor_account(app: Quart) -> None:
    async with app.test_request_context("/console/login", scope_base={
            "client": ("10.9.8.7", 5000)}):
        (ip_key, ip_limit), (user_key, user_limit) = auth._limit_keys(" Operator ")
        again = auth._limit_keys("operator")
    assert "10.9.8.7" not in ip_key and "operator" not in user_key.lower()
    assert user_key == again[1][0]  # case and spaces do not make a new account to guess
    cfg = app.extensions["gridbot"].config.console
    assert (ip_limit, user_limit) == (cfg.login_attempts_per_ip, cfg.login_attempts)


async def test_password_checks_queue_a_few_and_refuse_the_rest() -> None:
    checks = auth.PasswordChecks(workers=1, queue=1)
    release = threading.Event()

    def slow_check(value: str) -> str:
        release.wait(5)
        return value

    first = asyncio.create_task(checks.run(slow_check, "a"))  # working
    second = asyncio.create_task(checks.run(slow_check, "b"))  # waiting for the slot
    await asyncio.sleep(0.05)
    with pytest.raises(auth.LoginBusy):
        await checks.run(slow_check, "c")  # no room: refused at once, not queued
    release.set()
    assert await asyncio.gather(first, second) == ["a", "b"]
    assert await checks.run(str.upper, "d") == "D"  # room again


async def test_a_cancelled_check_holds_its_slot_until_its_thread_is_done() -> None:
    checks = auth.PasswordChecks(workers=1, queue=0)
    release = threading.Event()
    done: list[Any] = []

    def slow_check() -> None:
        release.wait(5)
        done.append(True)

    task = asyncio.create_task(checks.run(slow_check))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The request went away, but argon2 still runs in its thread: the slot is not free.
    waiting = asyncio.create_task(checks.run(str.upper, "x"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    release.set()
    assert await asyncio.wait_for(waiting, 5) == "X" and done == [True]
