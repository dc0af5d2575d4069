"""Browser test fixtures: the real app under hypercorn on a free loopback port, staff
accounts, and a Playwright page in Debian's chromium (installed by `./run test`).

The server runs in a thread with its own event loop, so the synchronous Playwright API drives
the browser from the test while the app serves it; `server.call(coro)` runs a coroutine on
the server's loop (create users, file cases, read the database) so tests use the same
Services the app does. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.config import PROJECT_ROOT
from tests.conftest import REQUIRE, make_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery"  # every test account's password
# Accounts every browser test can log in as: username → (role, scope).
STAFF = {
    "operator1": ("operator", ""),
    "dispatcher1": ("dispatcher", ""),
    "supervisor1": ("supervisor", ""),
}
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """The running app: `url` to browse, `services` it uses, `call` to run on its loop."""

    url: str
    services: Any
    loop: asyncio.AbstractEventLoop
    users: dict[str, tuple[str, str]] = field(default_factory=dict)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def add_user(self, username: str, role: str, scope: str = "",
                 display_name: str = "") -> None:
        from bot.staff import add_user

        self.call(add_user(self.services.db, username, PASSWORD, role, scope,
                           display_name or username, self.services.grids))
        self.users[username] = (role, scope)


def _chromium_or_fail() -> None:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: `./run test` installs Debian's chromium"
        if REQUIRE:
            pytest.fail(message + " (GRIDBOT_REQUIRE_SERVICES=1: browser tests must run)")
        pytest.skip(message)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LiveServer]:
    """The app on SQLite + the embedded store in a temp dir, served by hypercorn, with the
    STAFF accounts. One per test session: tests create their own cases."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config as HyperConfig

    from bot.services import build_services
    from shell.app import create_app

    tmp = tmp_path_factory.mktemp("console-app")
    config = make_config(tmp, model_dir)
    port = _free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None
    holder: dict[str, Any] = {}

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        services = await build_services(config)
        holder["services"] = services
        app = create_app(config, services)
        hyper = HyperConfig()
        hyper.bind = [f"127.0.0.1:{port}"]
        hyper.accesslog = None
        hyper.graceful_timeout = 1
        try:
            server = asyncio.ensure_future(serve(app, hyper, shutdown_trigger=stop.wait))
            for _ in range(200):  # until the port answers
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            ready.set()
            await server
        finally:
            await services.close()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # surfaced to the fixture below
            holder["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="console-live-server", daemon=True)
    thread.start()
    if not ready.wait(120) or "error" in holder:
        raise RuntimeError(f"the app did not start: {holder.get('error')!r}")
    server = LiveServer(f"http://127.0.0.1:{port}", holder["services"], loop)
    for username, (role, scope) in STAFF.items():
        server.add_user(username, role, scope)
    yield server
    assert stop is not None
    loop.call_soon_threadsafe(stop.set)
    thread.join(15)


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Any]:
    """Per module, never per session: the sync API keeps an event loop marked as running in
    this thread while it is open, which would break every async test collected after it."""
    _chromium_or_fail()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def chromium(playwright_driver: Any) -> Iterator[Any]:
    """One chromium per module: every test and every person in it gets a context of its own
    (its own cookies, storage and cache, as a fresh profile has), without starting another
    browser (~1.5 s each, three or four times a test)."""
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                headless=True)
    yield browser
    browser.close()


@pytest.fixture
def browser_context(chromium: Any) -> Iterator[Any]:
    """A fresh browser context per test: no cookies carried over."""
    context = _new_context(chromium)
    yield context
    context.close()


def _new_context(browser: Any) -> Any:
    # Reduced motion, as the console honours it: charts and maps drawn at once, not tweened
    # frame by frame (~13% of the browser tests' CPU).
    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900},
                                  timezone_id="Asia/Shanghai", reduced_motion="reduce")
    context.set_default_timeout(15_000)
    return context


def _watched(context: Any) -> Any:
    page = context.pages[0] if context.pages else context.new_page()
    errors: list[str] = []
    # A CSP violation or a script error is a test failure, not a silent broken page.
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text else None)
    page.script_errors = errors
    return page


@pytest.fixture
def page(browser_context: Any) -> Any:
    """A page in a fresh context; `page.script_errors` lists script errors and CSP refusals."""
    return _watched(browser_context)


@pytest.fixture
def open_page(chromium: Any) -> Iterator[Any]:
    """Another person at another computer: `open_page()` → a page in a context of its own."""
    contexts: list[Any] = []

    def make() -> Any:
        contexts.append(_new_context(chromium))
        return _watched(contexts[-1])

    yield make
    for context in contexts:
        context.close()


def login(page: Any, server: LiveServer, username: str, password: str = PASSWORD) -> None:
    """Log in through the form, as a person would; waits until the console has loaded."""
    page.goto(f"{server.url}/console/login")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_url(re.compile(r"/console/(?!login)"))


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artefact; returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    path = SCREENSHOTS / f"{safe}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session", autouse=True)
def _fresh_screenshots() -> None:
    """Screenshots of this run only (an old one would pass for a new one)."""
    if SCREENSHOTS.exists() and not os.environ.get("GRIDBOT_KEEP_SCREENSHOTS"):
        shutil.rmtree(SCREENSHOTS)
