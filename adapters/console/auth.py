"""Console sign-in: server-side sessions in Redis, CSRF tokens, login rate limits, role
checks, security headers and the staff audit log.

The cookie holds only a random token; Redis keeps the session under the token's SHA-256, so
a dump of Redis does not hand out live cookies. The account is re-read on every request, so
disabling a user or changing their role takes effect at once.

Logins are counted before the password is checked (per client address, then per account, in
Redis), so a burst of guesses costs at most the limit in password hashing; argon2 runs in
worker threads, a few at a time with a short queue, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import os
import secrets
import sys
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from quart import (
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select
from werkzeug.sansio.response import Response as SansIOResponse
from werkzeug.urls import iri_to_uri

import bot.staff as accounts  # by module: tests wrap accounts._verify to count checks
from adapters import app_state
from adapters.console import console
from adapters.guard import client_address
from bot.config import ConsoleConfig
from bot.kv import PREFIX
from bot.models import StaffAudit, StaffUser
from bot.services import Services
from bot.staff import ROLES, get_user
from bot.texts import t

COOKIE = "gridbot_session"
LOGIN_COOKIE = "gridbot_login_csrf"  # double-submit token for the login form (no session yet)
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
LOGIN_WINDOW_S = 15 * 60
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class StaffSession:
    """Who is signed in, as the pages need it. `active` is always true here (inactive accounts
    have no session), so it can stand in for a StaffUser in `bot.staff.visible_cases`."""

    id: int
    username: str
    display_name: str
    role: str
    scope: str
    csrf_token: str
    active: bool = True


def services() -> Services:
    return app_state.services()


def _config() -> ConsoleConfig:
    return app_state.config().console


def _session_key(token: str) -> str:
    return f"{PREFIX}staffsess:{hashlib.sha256(token.encode()).hexdigest()}"


def client_ip() -> str:
    """The client's address: the peer's, or a trusted proxy's word for it (server.*)."""
    return client_address()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison that takes any text (hmac.compare_digest raises on non-ASCII
    str, which a header or form field can hold)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                               expected.encode("utf-8", "surrogatepass"))


def current_staff() -> StaffSession | None:
    return g.get("staff")  # set by _gate before every console view


async def _load_session() -> None:
    """Before every console request: the signed-in staff member (or None) into `g.staff`."""
    g.staff = None
    token = request.cookies.get(COOKIE, "")
    if not token or len(token) > 128:
        return
    redis = services().redis
    key = _session_key(token)
    raw = await redis.get(key)
    if not raw:
        return
    try:
        data = json.loads(raw)
        user_id, csrf = int(data["uid"]), str(data["csrf"])
    except (ValueError, KeyError, TypeError):
        await redis.delete(key)
        return
    user = await get_user(services().db, user_id)
    if user is None or not user.active or user.role not in ROLES:
        await redis.delete(key)  # disabled since: the session ends now
        return
    await redis.expire(key, _config().session_ttl_s)  # sliding: idle time counts, not age
    g.staff = StaffSession(id=user.id, username=user.username,
                           display_name=user.display_name or user.username, role=user.role,
                           scope=user.scope, csrf_token=csrf)


async def session_alive(token: str) -> bool:
    """Whether the session behind this cookie still exists and its account is still active
    (long streams re-check it)."""
    raw = await services().redis.get(_session_key(token)) if token else None
    if not raw:
        return False
    try:
        user = await get_user(services().db, int(json.loads(raw)["uid"]))
    except (ValueError, KeyError, TypeError):
        return False
    return user is not None and user.active


async def _submitted_csrf() -> str:
    token = request.headers.get(CSRF_HEADER, "")
    if not token and request.mimetype in ("application/x-www-form-urlencoded",
                                          "multipart/form-data"):
        token = (await request.form).get(CSRF_FIELD, "")
    return token


def _wants_json() -> bool:
    return (request.method not in SAFE_METHODS or "/api/" in request.path
            or request.path.endswith("/events")
            or request.accept_mimetypes.best == "application/json")


def _refuse(status: int, key: str) -> Response:
    response = jsonify({"error": t(f"console.{key}")})
    response.status_code = status
    return response


async def error_page(status: int, message: str) -> Response:
    """A refusal a person reads in the browser: the console's own page, in Chinese, with a
    way back — not JSON, not the framework's English page."""
    page = await render_template("console/error.html", status=status, message=message,
                                 nav="")
    return Response(page, status=status, content_type="text/html; charset=utf-8")


async def refuse(status: int, key: str) -> Response:
    """JSON for the page scripts, a page for a person following a link."""
    if _wants_json():
        return _refuse(status, key)
    return await error_page(status, t(f"console.{key}"))


@console.errorhandler(404)
async def _not_found(_error: Exception) -> Response:
    return await refuse(404, "not_found")


@console.before_request
async def _gate() -> Response | None:
    if request.endpoint == "console.static":
        return None  # stylesheets and scripts: public, and no database read per file
    await _load_session()
    if request.method in SAFE_METHODS or request.endpoint == "console.login":
        return None  # the login form checks its own double-submit token
    staff = current_staff()
    if staff is None:
        return _refuse(401, "login_needed")
    if not same_secret(await _submitted_csrf(), staff.csrf_token):
        return _refuse(403, "csrf_failed")
    return None


def _csp() -> str:
    img = ["'self'", "data:", "blob:"]
    tiles = _config().map_tiles
    if tiles:
        parts = urlsplit(tiles.replace("{s}", "a"))
        if parts.scheme in ("http", "https") and parts.netloc:
            # Tile hosts like {s}.tile.example.org: allow the whole subdomain set.
            host = parts.netloc.replace("a.", "*.", 1) if "{s}" in tiles else parts.netloc
            img.append(f"{parts.scheme}://{host}")
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src {' '.join(img)}; connect-src 'self'; font-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@console.after_request
async def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _csp()
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.endpoint != "console.static":
        # Case pages and JSON carry personal data: never kept by browsers or proxies.
        response.headers["Cache-Control"] = "no-store"
    return response


def require_staff(*roles: str) -> Callable[[F], F]:
    """Signed in (401, or a redirect to the login page for a page view) and, when roles are
    given, one of them (403)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            staff = current_staff()
            if staff is None:
                if _wants_json():
                    return _refuse(401, "login_needed")
                return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
            if roles and staff.role not in roles:
                return await refuse(403, "forbidden")
            return await view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


async def audit(action: str, target: str = "", **detail: Any) -> None:
    """One StaffAudit row for what the signed-in person just did (or tried)."""
    staff = current_staff()
    async with services().db.session() as session, session.begin():
        session.add(StaffAudit(at=datetime.now(UTC),
                               username=staff.username if staff else detail.pop("username", ""),
                               action=action, target=target[:140], detail=detail,
                               ip=client_ip()[:64]))


# -- login rate limit -------------------------------------------------------------------------

class LoginBusy(Exception):
    """More password checks are waiting than `console.login_queue` allows."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _limit_keys(username: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """(key, limit) for the client address and for the account, in the order they are
    counted. Both hashed: neither addresses nor usernames appear in Redis keys."""
    cfg = _config()
    return ((f"{PREFIX}login:ip:{_digest(client_ip())}", cfg.login_attempts_per_ip),
            (f"{PREFIX}login:user:{_digest(username.strip().lower())}", cfg.login_attempts))


async def _count(key: str) -> int:
    """One more attempt on `key`, atomically: the window starts with the first attempt
    (SET NX EX; INCR keeps the TTL), so refused attempts never stretch a lockout, and it
    needs no Redis 7 (EXPIRE NX)."""
    async with services().redis.pipeline(transaction=True) as pipe:
        pipe.set(key, 0, nx=True, ex=LOGIN_WINDOW_S)
        pipe.incr(key)
        _, count = await pipe.execute()
    return int(count)


async def _admit(username: str) -> bool:
    """Count this attempt before any password is checked; False when it is over a limit.
    The address is counted first and an address over its limit stops there, so it cannot
    use up other accounts' attempts: one address does not lock everyone out, and one
    account is not guessed at from many addresses."""
    for key, limit in _limit_keys(username):
        if await _count(key) > limit:
            return False
    return True


async def _give_back(username: str) -> None:
    """A successful login does not count against the limits (an office behind one address
    signs in every morning), nor does one refused because too many checks were waiting:
    only checked failures add up."""
    redis = services().redis
    for key, _ in _limit_keys(username):
        if int(await redis.decr(key)) <= 0:  # gone meanwhile: DECR made a key without TTL
            await redis.delete(key)


def _lower_priority() -> None:
    """Hashing threads yield the CPU to the event loop: argon2 runs its lanes in threads of
    its own (which inherit this nice value), and on a small machine they would otherwise
    crowd out the thread that answers every other request. Linux only (elsewhere the call
    would renice the whole process)."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)


HASH_NICE = 10
# One pool for the process (the per-app semaphore sets how many threads work at once).
_hash_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="gridbot-password",
                                initializer=_lower_priority)


class PasswordChecks:
    """argon2 off the event loop: at most `workers` checks run at once (in low-priority
    threads), at most `queue` wait for a slot, and any more are refused at once (LoginBusy)
    rather than queued without bound. A slot is held until its thread is done, even when
    the request that asked is cancelled."""

    def __init__(self, workers: int, queue: int) -> None:
        self._slots = asyncio.Semaphore(workers)
        self._most = workers + queue
        self._pending = 0

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._pending >= self._most:
            raise LoginBusy
        self._pending += 1
        try:
            await self._slots.acquire()
            try:
                future = asyncio.get_running_loop().run_in_executor(_hash_pool, fn, *args)
            except BaseException:
                self._slots.release()
                raise
            future.add_done_callback(lambda _: self._slots.release())
            return await asyncio.shield(future)
        finally:
            self._pending -= 1


def _password_checks() -> PasswordChecks:
    """This app's PasswordChecks (one per event loop: a semaphore belongs to its loop)."""
    loop = asyncio.get_running_loop()
    held = current_app.extensions.get("gridbot.password_checks")
    if held is None or held[0] is not loop:
        cfg = _config()
        held = (loop, PasswordChecks(cfg.login_hash_workers, cfg.login_queue))
        current_app.extensions["gridbot.password_checks"] = held
    return held[1]


async def verify_login(username: str, password: str) -> StaffUser | None:
    """`bot.staff.check_login` with the hashing in PasswordChecks: the active account when
    the password matches, else None. An unknown or disabled account costs one check too, so
    timing does not tell which usernames exist. Raises LoginBusy when the queue is full."""
    db = services().db
    async with db.session() as session:
        user = (await session.execute(
            select(StaffUser).where(StaffUser.username == username.strip()))).scalar()
    usable = user is not None and user.active
    stored = user.password_hash if user is not None and usable else accounts.dummy_hash()
    checks = _password_checks()
    if not await checks.run(accounts._verify, stored, password) or user is None \
            or not usable:
        return None
    rehashed = None
    if accounts.needs_rehash(stored):
        with contextlib.suppress(LoginBusy):  # busy now: the next login rehashes
            rehashed = await checks.run(accounts.hash_password, password)
    async with db.session() as session, session.begin():
        row = await session.get(StaffUser, user.id)
        if row is None or not row.active:
            return None
        if rehashed and row.password_hash == stored:
            row.password_hash = rehashed
        row.last_login_at = datetime.now(UTC)
    return row


# -- sessions ---------------------------------------------------------------------------------

async def start_session(user: StaffUser) -> tuple[str, str]:
    """A new session (a fresh token, so a planted cookie is never promoted): (token, csrf)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await services().redis.set(_session_key(token), json.dumps({"uid": user.id, "csrf": csrf}),
                               ex=_config().session_ttl_s)
    return token, csrf


def _set_cookie(response: SansIOResponse, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/console", httponly=True,
                        samesite="Lax", secure=_config().secure_cookies)


def _safe_next(target: str | None) -> str:
    """Only same-site console paths: the login form is no open redirect, no control
    character (CR/LF would split the Location header) reaches a header, and anything
    beyond ASCII is percent-encoded, as a Location header should be."""
    if target and target.startswith("/console/") and not target.startswith("//") \
            and "\\" not in target and target.isprintable() and len(target) <= 2000:
        return iri_to_uri(target)
    return url_for("console.home")


@console.route("/login", methods=["GET", "POST"])
async def login() -> Any:
    error = ""
    status = 200
    username = ""
    next_url = _safe_next(request.args.get("next"))
    if request.method == "POST":
        form = await request.form
        username = form.get("username", "")[:64]
        password = form.get("password", "")[:1024]
        next_url = _safe_next(form.get("next") or request.args.get("next"))
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not same_secret(form.get(CSRF_FIELD, ""), expected):
            error, status = t("console.csrf_failed"), 403
        else:
            user, refused = None, not await _admit(username)
            if not refused:
                try:
                    user = await verify_login(username, password)
                except LoginBusy:  # not checked: the attempt does not count either
                    refused = True
                    await _give_back(username)
            if refused:  # over a limit, or too many checks waiting: no hashing at all
                error, status = t("console.too_many_logins"), 429
                await audit("login_blocked", username, username=username)
            elif user is None:
                await audit("login_failed", username, username=username)
                error, status = t("console.bad_login"), 401
            else:
                await _give_back(username)
                stale = request.cookies.get(COOKIE, "")
                if stale:  # whatever session this browser had ends here
                    await services().redis.delete(_session_key(stale[:128]))
                token, _ = await start_session(user)
                g.staff = StaffSession(user.id, user.username, user.display_name, user.role,
                                       user.scope, "")
                await audit("login")
                response = redirect(next_url)
                _set_cookie(response, COOKIE, token, None)  # a browser-session cookie
                response.delete_cookie(LOGIN_COOKIE, path="/console")
                return response
    login_token = secrets.token_urlsafe(32)
    body = await render_template("console/login.html", error=error, username=username,
                                 login_token=login_token, next_url=next_url)
    page = Response(body, status=status, content_type="text/html; charset=utf-8")
    _set_cookie(page, LOGIN_COOKIE, login_token, LOGIN_WINDOW_S)
    return page


@console.post("/logout")
@require_staff()
async def logout() -> Any:
    token = request.cookies.get(COOKIE, "")
    await audit("logout")
    await services().redis.delete(_session_key(token))
    response = redirect(url_for("console.login"))
    response.delete_cookie(COOKIE, path="/console")
    return response


@console.get("/")
@require_staff()
async def home() -> Any:
    staff = current_staff()
    assert staff is not None
    # Operators start at intake; everyone else at their queue.
    return redirect(url_for("console.intake" if staff.role == "operator" else "console.queue"))
