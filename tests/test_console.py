"""The staff console over HTTP (Quart's test client) on both storage set-ups: sign-in,
sessions, CSRF, login limits, role and scope checks on every case endpoint, the audit log,
phone masking, hotline intake, actions, and live change notices across two app instances."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cases import CaseDraft, ReporterRef
from bot.config import ConsoleConfig
from bot.models import Case, Reporter, StaffAudit, TrainingExample
from bot.services import Services, build_services
from bot.staff import StaffError, add_user, check_login, visible_cases
from shell.app import create_app
from tests.gridbot_cli import gridbot

PASSWORD = "s3cret-enough"
LAMP = "季华五路18号门口路灯不亮，晚上很黑"  # → a grid in 澜石社区, 区城市管理和综合执法局
LAMP_ADDRESS = "季华五路18号"
CLIENT = ("10.1.2.3", 5000)


class Console:
    """A browser stand-in: keeps the cookies, reads the CSRF token from a page."""

    def __init__(self, app, ip: str = CLIENT[0]) -> None:
        self.client = app.test_client()
        self.scope = {"client": (ip, 5000)}
        self.csrf = ""

    async def get(self, path: str, **kw: Any):
        return await self.client.get(path, scope_base=self.scope, **kw)

    async def post(self, path: str, body: dict | None = None, csrf: str | None = None,
                   **kw: Any):
        headers = {"X-CSRF-Token": self.csrf if csrf is None else csrf}
        return await self.client.post(path, json=body or {}, headers=headers,
                                      scope_base=self.scope, **kw)

    async def login(self, username: str, password: str = PASSWORD):
        page = await self.get("/console/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(True))
        assert token is not None
        r = await self.client.post("/console/login", form={
            "username": username, "password": password, "csrf_token": token.group(1)},
            scope_base=self.scope)
        if r.status_code == 302:
            cases = await self.get("/console/cases")
            meta = re.search(r'name="csrf-token" content="([^"]+)"', await cases.get_data(True))
            assert meta is not None
            self.csrf = meta.group(1)
        return r


def _cookie(console: Console) -> str:
    return next(c.value for c in console.client.cookie_jar if c.name == "gridbot_session")


async def _users(services: Services) -> None:
    db, grids = services.db, services.grids
    await add_user(db, "op", PASSWORD, "operator", display_name="接线员小李", grids=grids)
    await add_user(db, "disp", PASSWORD, "dispatcher", grids=grids)
    await add_user(db, "sup", PASSWORD, "supervisor", grids=grids)
    await add_user(db, "city", PASSWORD, "department", "department:区城市管理和综合执法局",
                   grids=grids)
    await add_user(db, "water", PASSWORD, "department", "department:佛山水业集团", grids=grids)
    # 张槎街道: the lamp case is in 石湾镇街道, so this grid leader must not see it.
    await add_user(db, "zhangcha", PASSWORD, "grid_leader", "street:440604002", grids=grids)


async def _lamp_case(services: Services, phone: str | None = "13812345678") -> Case:
    located = services.locator.from_text(LAMP_ADDRESS)
    assert located.spot is not None
    code = next(c for c in services.catalogue.items if c.name == "路灯").code
    filing = await services.cases.file(
        CaseDraft(text=LAMP, item_code=code, grid_code=located.spot.grid.code,
                  lat=located.spot.lat, lon=located.spot.lon, address=LAMP_ADDRESS),
        ReporterRef("hotline", f"call-test-{phone}", phone), attach_duplicates=False)
    return filing.case


async def _audit(services: Services, action: str) -> list[StaffAudit]:
    async with services.db.session() as session:
        return list((await session.execute(
            select(StaffAudit).where(StaffAudit.action == action)
            .order_by(StaffAudit.id))).scalars())


@pytest.fixture
async def app(services: Services):
    await _users(services)
    return create_app(services.config, services, background=False)


# -- accounts ---------------------------------------------------------------------------------

async def test_accounts_hash_passwords_and_check_scopes(services: Services) -> None:
    user = await add_user(services.db, "hash-me", PASSWORD, "operator", grids=services.grids)
    assert user.password_hash.startswith("$argon2") and PASSWORD not in user.password_hash
    assert await check_login(services.db, "hash-me", PASSWORD) is not None
    assert await check_login(services.db, "hash-me", PASSWORD + "x") is None
    assert await check_login(services.db, "nobody", PASSWORD) is None
    for role, scope in [("boss", ""), ("department", ""), ("department", "grid:1"),
                        ("grid_leader", "street:NOPE"), ("operator", "department:X")]:
        with pytest.raises(StaffError):
            await add_user(services.db, f"bad-{role}", PASSWORD, role, scope,
                           grids=services.grids)
    with pytest.raises(StaffError, match="already exists"):
        await add_user(services.db, "hash-me", PASSWORD, "operator")
    with pytest.raises(StaffError, match="at least"):
        await add_user(services.db, "short", "1234", "operator")


async def test_visible_cases_follows_department_and_area_scopes(services: Services) -> None:
    await _users(services)
    case = await _lamp_case(services)
    seen: dict[str, bool] = {}
    for name in ("op", "disp", "sup", "city", "water", "zhangcha"):
        user = await check_login(services.db, name, PASSWORD)
        async with services.db.session() as session:
            seen[name] = (await session.execute(select(Case.id).where(
                Case.id == case.id, visible_cases(user, services.grids)))).first() is not None
    assert seen == {"op": True, "disp": True, "sup": True, "city": True, "water": False,
                    "zhangcha": False}
    street = services.grids.at_level(case.grid_code, "street")
    await add_user(services.db, "own-street", PASSWORD, "grid_leader", f"street:{street.code}",
                   grids=services.grids)
    await add_user(services.db, "own-grid", PASSWORD, "grid_leader", f"grid:{case.grid_code}",
                   grids=services.grids)
    for name in ("own-street", "own-grid"):
        user = await check_login(services.db, name, PASSWORD)
        async with services.db.session() as session:
            assert (await session.execute(select(Case.id).where(
                visible_cases(user, services.grids)))).scalars().all() == [case.id]


def test_users_cli_adds_lists_and_disables_without_echoing_secrets(tmp_path: Path) -> None:
    env = {**os.environ, "GRIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/u.db"}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return gridbot("users", *args, input=stdin, env=env)  # in-process

    secret = "very-secret-pass"
    added = run("add", "wang", "--role", "department", "--scope", "department:佛山水业集团",
                "--display-name", "王工", "--password-stdin", stdin=secret + "\n")
    assert added.returncode == 0, added.stderr
    assert secret not in added.stdout + added.stderr
    again = run("add", "wang", "--role", "operator", "--password-stdin", stdin=secret + "\n")
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = run("add", "li", "--role", "grid_leader", "--scope", "street:NOPE",
              "--password-stdin", stdin=secret + "\n")
    assert bad.returncode == 2 and "NOPE" in bad.stderr
    listed = run("list")
    assert listed.returncode == 0 and "wang" in listed.stdout and "argon2" not in listed.stdout
    assert run("disable", "wang").returncode == 0
    assert run("disable", "nobody").returncode == 1
    import sqlite3

    with sqlite3.connect(tmp_path / "u.db") as db:
        row = db.execute("SELECT role, scope, active, password_hash FROM staff_users "
                         "WHERE username='wang'").fetchone()
    assert row[:3] == ("department", "department:佛山水业集团", 0)
    assert row[3].startswith("$argon2id$")


# -- sign-in, sessions, CSRF ------------------------------------------------------------------

async def test_login_bad_password_logout_and_security_headers(app, services: Services) -> None:
    c = Console(app)
    r = await c.get("/console/cases")
    assert r.status_code == 302 and "/console/login" in r.headers["Location"]
    assert (await c.get("/console/api/cases")).status_code == 401

    r = await c.login("disp", "wrong-password")
    assert r.status_code == 401 and "用户名或密码不正确" in await r.get_data(True)
    assert not any(k.name == "gridbot_session" for k in c.client.cookie_jar)
    failed = await _audit(services, "login_failed")
    assert failed and failed[-1].target == "disp" and failed[-1].ip == CLIENT[0]

    r = await c.login("disp")
    assert r.status_code == 302 and r.headers["Location"].startswith("/console/")
    cookie = r.headers["Set-Cookie"]
    assert "gridbot_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Path=/console" in cookie and "Secure" not in cookie
    assert [a.username for a in await _audit(services, "login")] == ["disp"]

    page = await c.get("/console/cases")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"
    html = await page.get_data(True)
    assert "<script>" not in html and "onclick" not in html  # no inline scripts anywhere

    r = await c.post("/console/logout", csrf="")
    assert r.status_code == 403  # logging out is a state change too
    r = await c.post("/console/logout")
    assert r.status_code == 302
    assert (await c.get("/console/api/cases")).status_code == 401
    assert [a.username for a in await _audit(services, "logout")] == ["disp"]


async def test_secure_cookie_when_configured(services: Services) -> None:
    await _users(services)
    config = services.config.model_copy(update={"console": ConsoleConfig(secure_cookies=True)})
    c = Console(create_app(config, services, background=False))
    r = await c.login("op")
    assert r.status_code == 302 and "Secure" in r.headers["Set-Cookie"]


async def test_session_expires_and_disabled_accounts_lose_their_session(
        app, services: Services) -> None:
    c = Console(app)
    await c.login("sup")
    key = "gridbot:staffsess:" + hashlib.sha256(_cookie(c).encode()).hexdigest()
    ttl = await services.redis.ttl(key)
    assert 0 < ttl <= services.config.console.session_ttl_s
    assert (await c.get("/console/api/cases")).status_code == 200
    await services.redis.delete(key)  # what the TTL does after 8 idle hours
    assert (await c.get("/console/api/cases")).status_code == 401

    await c.login("sup")
    from bot.staff import set_active

    await set_active(services.db, "sup", False)
    assert (await c.get("/console/api/cases")).status_code == 401
    assert (await c.login("sup")).status_code == 401


async def test_login_rate_limit_per_username_and_per_address(services: Services) -> None:
    await _users(services)
    config = services.config.model_copy(update={"console": ConsoleConfig(
        login_attempts=3, login_attempts_per_ip=3)})  # per account and per address
    app = create_app(config, services, background=False)
    attacker = Console(app, ip="10.9.9.9")
    for _ in range(3):
        assert (await attacker.login("op", "guess")).status_code == 401
    # The right password no longer helps from anywhere, for this username…
    assert (await attacker.login("op")).status_code == 429
    elsewhere = Console(app, ip="10.8.8.8")
    r = await elsewhere.login("op")
    assert r.status_code == 429 and "15 分钟" in await r.get_data(True)
    # …and this address cannot move on to other usernames.
    assert (await attacker.login("disp")).status_code == 429
    assert (await Console(app, ip="10.7.7.7").login("disp")).status_code == 302
    assert len(await _audit(services, "login_blocked")) == 3


async def test_csrf_token_required_on_every_state_change(app) -> None:
    c = Console(app)
    await c.login("op")
    body = {"text": LAMP}
    assert (await c.post("/console/api/suggest", body, csrf="")).status_code == 403
    assert (await c.post("/console/api/suggest", body, csrf="forged")).status_code == 403
    assert (await c.post("/console/api/suggest", body)).status_code == 200
    # Another session's token is no good either.
    other = Console(app)
    await other.login("disp")
    assert (await c.post("/console/api/suggest", body, csrf=other.csrf)).status_code == 403
    # The login form carries its own token: a cross-site login POST is refused.
    r = await Console(app).client.post("/console/login", form={
        "username": "op", "password": PASSWORD}, scope_base={"client": CLIENT})
    assert r.status_code == 403


# -- intake -----------------------------------------------------------------------------------

async def test_intake_suggests_files_a_hotline_case_and_stores_the_correction(
        app, services: Services) -> None:
    c = Console(app)
    await c.login("op")
    # The correction field searches every item by code, name and synonym (a datalist).
    page = await (await c.get("/console/intake")).get_data(as_text=True)
    assert 'id="item-list"' in page and 'value="C0102"' in page and "窨井盖" in page
    r = await c.post("/console/api/suggest", {"text": LAMP, "address": LAMP_ADDRESS})
    answer = await r.get_json()
    assert r.status_code == 200 and len(answer["items"]) == 3
    first = answer["items"][0]
    assert first["department"] and first["limits"] and first["due"]
    assert answer["location"]["status"] == "found"
    assert answer["location"]["grid"]["name"].startswith("澜石社区")
    assert (await c.post("/console/api/suggest", {"text": "hello"})).status_code == 422

    corrected = answer["items"][1]["code"]
    r = await c.post("/console/api/intake", {
        "text": LAMP, "phone": "138 1234 5678", "address": LAMP_ADDRESS,
        "item_code": corrected, "suggested_code": first["code"]})
    filed = await r.get_json()
    assert r.status_code == 201 and filed["corrected"] is True, filed
    async with services.db.session() as session:
        case = (await session.execute(
            select(Case).where(Case.number == filed["number"]))).scalar_one()
        reporter = await session.get(Reporter, case.reporter_id)
        example = (await session.execute(select(TrainingExample))).scalars().one()
    assert case.channel == "hotline" and case.item_code == corrected
    assert case.status == "dispatched" and case.grid_code == answer["location"]["grid"]["code"]
    assert reporter.phone == "13812345678" and "13812345678" not in reporter.external_id
    assert (example.item_code, example.suggested_code, example.source) == (
        corrected, first["code"], "hotline")
    intake = await _audit(services, "intake")
    assert intake[-1].target == filed["number"] and intake[-1].detail["corrected"] is True

    for bad, status in [({"item_code": "NOPE"}, 422), ({"phone": "call me"}, 422),
                        ({"address": "", "text": "路灯不亮了，快来修"}, 422)]:
        r = await c.post("/console/api/intake", {
            "text": LAMP, "address": LAMP_ADDRESS, "item_code": corrected, **bad})
        assert r.status_code == status, (bad, await r.get_json())
    # Department users and grid leaders do not take calls.
    city = Console(app)
    await city.login("city")
    assert (await city.post("/console/api/suggest", {"text": LAMP})).status_code == 403
    assert (await city.get("/console/intake")).status_code == 403


async def test_phone_is_masked_except_for_operator_and_supervisor_reveals(
        app, services: Services) -> None:
    case = await _lamp_case(services, phone="13812345678")
    disp = Console(app)
    await disp.login("disp")
    view = await (await disp.get(f"/console/api/cases/{case.number}")).get_json()
    assert view["reporter"]["phone"] == "138****5678" and view["reporter"]["may_reveal"] is False
    html = await (await disp.get(f"/console/cases/{case.number}")).get_data(True)
    assert "138****5678" in html and "13812345678" not in html
    assert (await disp.post(f"/console/api/cases/{case.number}/phone")).status_code == 403

    sup = Console(app)
    await sup.login("sup")
    view = await (await sup.get(f"/console/api/cases/{case.number}")).get_json()
    assert view["reporter"]["phone"] == "138****5678" and view["reporter"]["may_reveal"]
    r = await sup.post(f"/console/api/cases/{case.number}/phone")
    assert r.status_code == 200 and (await r.get_json())["phone"] == "13812345678"
    reveals = await _audit(services, "reveal_phone")
    assert [(a.username, a.target) for a in reveals] == [("sup", case.number)]
    # Nothing about the caller leaks into the queue either.
    rows = json.dumps(await (await disp.get("/console/api/cases")).get_json())
    assert "5678" not in rows and "call-test" not in rows


# -- scope: no case readable or actionable by guessing its number -----------------------------

async def test_out_of_scope_cases_answer_404_everywhere(app, services: Services) -> None:
    case = await _lamp_case(services)
    assert case.department == "区城市管理和综合执法局"
    for name in ("water", "zhangcha"):
        c = Console(app)
        await c.login(name)
        n = case.number
        for path in (f"/console/cases/{n}", f"/console/api/cases/{n}",
                     f"/console/api/cases/{n}/row"):
            assert (await c.get(path)).status_code == 404, (name, path)
        for path in (f"/console/api/cases/{n}/actions/accept",
                     f"/console/api/cases/{n}/actions/dispatch"):
            r = await c.post(path, {"reason": "x"})
            assert r.status_code == 404, (name, path, r.status_code)
        # Revealing phones is refused by role before any case is looked at: the same answer
        # for a real number and a made-up one.
        real = await c.post(f"/console/api/cases/{n}/phone")
        made_up = await c.post("/console/api/cases/20991231-9999/phone")
        assert real.status_code == made_up.status_code == 403
        # Same answer as a number that does not exist: nothing to learn from probing.
        assert (await c.get("/console/api/cases/20991231-9999")).status_code == 404
        listed = await (await c.get("/console/api/cases")).get_json()
        assert listed["total"] == 0 and listed["cases"] == []
    city = Console(app)
    await city.login("city")
    listed = await (await city.get("/console/api/cases")).get_json()
    assert [r["number"] for r in listed["cases"]] == [case.number]
    assert (await city.get(f"/console/cases/{case.number}")).status_code == 200


async def test_actions_follow_roles_and_are_audited(app, services: Services) -> None:
    case = await _lamp_case(services)
    n = case.number
    op, disp, city, sup = (Console(app) for _ in range(4))
    for console, name in ((op, "op"), (disp, "disp"), (city, "city"), (sup, "sup")):
        await console.login(name)
    # An operator files calls; dispatching is not theirs.
    r = await op.post(f"/console/api/cases/{n}/actions/dispatch", {"target": "department:X"})
    assert r.status_code == 403
    assert (await _audit(services, "refused:dispatch"))[-1].username == "op"
    assert (await op.post(f"/console/api/cases/{n}/actions/explode")).status_code == 404

    r = await disp.post(f"/console/api/cases/{n}/actions/dispatch",
                        {"target": "department:区城市管理和综合执法局", "reason": "路灯归城管"})
    assert r.status_code == 200, await r.get_json()
    view = await (await disp.get(f"/console/api/cases/{n}")).get_json()
    assert view["assignee"] == "区城市管理和综合执法局" and view["status"] == "dispatched"
    r = await disp.post(f"/console/api/cases/{n}/actions/dispatch", {"target": "street:NOPE",
                                                                      "reason": "x"})
    assert r.status_code == 422
    r = await disp.post(f"/console/api/cases/{n}/actions/urge", {"reason": "市民再次来电"})
    assert r.status_code == 200
    view = await (await disp.get(f"/console/api/cases/{n}")).get_json()
    assert view["timeline"][-1]["note"] == "督办：市民再次来电"
    assert "accept" not in view["actions"] and "dispatch" in view["actions"]

    city_view = await (await city.get(f"/console/api/cases/{n}")).get_json()
    # At the district there is no level above: 退回 and 上报 are not offered (both would be
    # refused with "top_level").
    assert city_view["actions"] == ["accept", "resolve"]
    assert (await city.post(f"/console/api/cases/{n}/actions/accept")).status_code == 200
    r = await city.post(f"/console/api/cases/{n}/actions/accept")
    assert r.status_code == 409  # already taken: the refusal says so
    r = await city.post(f"/console/api/cases/{n}/actions/resolve", {"reason": "已更换灯泡"})
    assert r.status_code == 200
    r = await sup.post(f"/console/api/cases/{n}/actions/verify", {"reason": "回访确认"})
    assert r.status_code == 200, await r.get_json()
    view = await (await sup.get(f"/console/api/cases/{n}")).get_json()
    assert view["status"] == "closed"
    done = {(a.username, a.action) for a in await _audit(services, "accept")} | {
        (a.username, a.action) for a in await _audit(services, "verify")}
    assert done == {("city", "accept"), ("sup", "verify")}

    other = await _lamp_case(services, phone=None)
    r = await disp.post(f"/console/api/cases/{other.number}/actions/reject", {"reason": ""})
    assert r.status_code == 409 and "原因" in (await r.get_json())["error"]
    r = await disp.post(f"/console/api/cases/{other.number}/actions/reject",
                        {"reason": "重复来电，无效"})
    assert r.status_code == 200
    assert (await (await disp.get(f"/console/api/cases/{other.number}/row")).get_json())[
        "status"] == "rejected"


async def test_queue_filters_and_pages(app, services: Services) -> None:
    first = await _lamp_case(services)
    await services.cases.transition(first.number, "rejected", "test", "无效")
    second = await _lamp_case(services)
    c = Console(app)
    await c.login("disp")

    async def numbers(query: str) -> list[str]:
        data = await (await c.get(f"/console/api/cases?{query}")).get_json()
        return [row["number"] for row in data["cases"]]

    assert await numbers("") == [second.number, first.number]
    assert await numbers("status=open") == [second.number]
    assert await numbers("status=rejected") == [first.number]
    assert await numbers("status=open&channel=hotline&level=" + second.current_level) == [
        second.number]
    assert await numbers("channel=telegram") == []
    street = services.grids.at_level(second.grid_code, "street").code
    assert await numbers(f"grid={street}&status=open") == [second.number]
    assert await numbers("grid=440604002") == []
    assert await numbers(f"item={second.item_code}&status=open") == [second.number]
    assert await numbers("overdue=1") == []
    data = await (await c.get("/console/api/cases?page=2")).get_json()
    assert data["total"] == 2 and data["cases"] == [] and data["pages"] == 1
    # % and _ are characters to look for, not LIKE wildcards that match every case.
    for wildcard in ("%25", "_", "%25%25", "__"):
        assert await numbers(f"q={wildcard}") == []
        assert await numbers(f"item={wildcard}") == []


# -- live updates -----------------------------------------------------------------------------

async def _read_events(connection, wanted: str, timeout: float = 15) -> list[dict]:
    """Read the SSE stream until an event about `wanted` arrives."""
    buffer = ""
    seen: list[dict] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        chunk = await asyncio.wait_for(connection.receive(), deadline - loop.time())
        buffer += chunk.decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            data = [line[6:] for line in block.splitlines() if line.startswith("data: ")]
            if "event: case" in block and data:
                seen.append(json.loads(data[0]))
                if seen[-1]["number"] == wanted:
                    return seen
    raise AssertionError(f"no event for {wanted}; got {seen}")


async def test_changes_reach_sse_clients_of_another_app_instance(
        request: pytest.FixtureRequest, services: Services, tmp_path: Path) -> None:
    """A case filed through one instance shows up on a console served by another: on
    PostgreSQL + Redis two separate Services (as two server processes have); on the embedded
    store one process, two apps."""
    await _users(services)
    if services.db.dialect == "postgresql":
        other = await build_services(services.config)
    else:
        other = services
    try:
        app_b = create_app(other.config, other, background=False)
        watcher = Console(app_b)
        await watcher.login("city")
        water = Console(app_b)
        await water.login("water")
        connection = watcher.client.request("/console/events", scope_base=watcher.scope)
        blind = water.client.request("/console/events", scope_base=water.scope)
        async with connection, blind:
            await connection.send_complete()
            await blind.send_complete()
            first = await asyncio.wait_for(connection.receive(), 5)
            assert b"connected" in first
            await asyncio.wait_for(blind.receive(), 5)
            await asyncio.sleep(0.2)  # the subscription is in place
            case = await _lamp_case(services)  # through instance A
            seen = await _read_events(connection, case.number)
            assert seen[-1] == {"number": case.number, "status": "dispatched"}
            # The water company's console never hears of the city's lamp.
            got = b""
            loop = asyncio.get_running_loop()
            quiet_until = loop.time() + 1.5
            while loop.time() < quiet_until:
                try:
                    got += await asyncio.wait_for(blind.receive(), quiet_until - loop.time())
                except TimeoutError:
                    break
            assert case.number.encode() not in got, got
            await services.cases.transition(case.number, "rejected", "test", "无效")
            seen = await _read_events(connection, case.number)
            assert seen[-1]["status"] == "rejected"
            await connection.disconnect()
            await blind.disconnect()
    finally:
        if other is not services:
            await other.close()


async def test_change_notices_follow_commits_not_rollbacks_and_never_break_a_case(
        services: Services, caplog: pytest.LogCaptureFixture) -> None:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from bot.changes import subscribe

    notices = subscribe(services.redis, idle_s=0.2)
    assert await anext(notices) is None  # subscribed, nothing yet

    async def heard(number: str) -> list[dict]:
        got: list[dict] = []
        for _ in range(15):
            change = await anext(notices)
            if change is not None:
                got.append(change)
                if change["number"] == number:
                    break
        return [g for g in got if g["number"] == number]

    case = await _lamp_case(services)
    assert (await heard(case.number))[0]["department"] == "区城市管理和综合执法局"

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with services.db.session() as session, session.begin():
            row = await session.get(Case, case.id)
            row.status = "rejected"
            await session.flush()
            raise Boom
    # Rolled back: nothing happened, nothing said. Whatever the rollback might have sent is
    # out after drain(); a later commit's notice then comes after it on the channel, so
    # hearing that one (not waiting out 15 quiet reads) shows there was none.
    await services.db.change_publisher.drain()
    later = await _lamp_case(services, phone="13900003333")
    assert later.number != case.number
    said: list[str] = []
    for _ in range(15):
        change = await anext(notices)
        if change is not None:
            said.append(change["number"])
            if change["number"] == later.number:
                break
    assert said[-1:] == [later.number] and case.number not in said

    publisher = services.db.change_publisher
    working = publisher.redis
    # Nothing listens on port 1; no retries (redis-py's default backs off ~4 s first).
    publisher.redis = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                                     retry=Retry(NoBackoff(), 0))
    try:
        await services.cases.transition(case.number, "rejected", "test", "无效")
        await publisher.drain()
    finally:
        await publisher.redis.aclose()
        publisher.redis = working
    assert (await services.cases.get(case.number)).status == "rejected"
    assert "could not publish" in caplog.text
    await notices.aclose()


async def test_closed_services_leave_no_database_behind(tmp_path: Path, model_dir: Path) -> None:
    """The change publisher's session listeners go with its Services: SQLAlchemy's event
    registry holds listeners strongly, and installed for good they kept every Database a
    process built (its engine, its statement cache) alive until the process ended."""
    import gc
    import weakref

    from tests.conftest import make_config

    built = await build_services(make_config(tmp_path, model_dir))
    await _lamp_case(built, phone="13900004444")  # a commit goes through the listeners
    database = weakref.ref(built.db)
    await built.close()
    await built.db.change_publisher.close()  # closing again is harmless
    del built
    gc.collect()
    assert database() is None


async def test_merge_and_split_from_the_console(app, services: Services) -> None:
    target = await _lamp_case(services)
    source = await _lamp_case(services, phone="13900002222")
    # A third caller about the same lamp joins the open case as an attached report.
    located = services.locator.from_text(LAMP_ADDRESS)
    joined = await services.cases.file(
        CaseDraft(text="季华五路那盏路灯还是不亮", item_code=target.item_code,
                  grid_code=located.spot.grid.code, lat=located.spot.lat, lon=located.spot.lon,
                  address=LAMP_ADDRESS), ReporterRef("hotline", "call-third"))
    assert joined.attached
    disp = Console(app)
    await disp.login("disp")
    r = await disp.post(f"/console/api/cases/{source.number}/actions/merge",
                        {"target": target.number, "reason": ""})
    assert r.status_code == 409  # a reason is required
    r = await disp.post(f"/console/api/cases/{source.number}/actions/merge",
                        {"target": target.number, "reason": "同一盏路灯"})
    assert r.status_code == 200, await r.get_json()
    view = await (await disp.get(f"/console/api/cases/{target.number}")).get_json()
    assert source.number in [m["number"] for m in view["merged"]]
    attached = next(a for a in view["attached"] if a["text"].startswith("季华五路那盏"))
    r = await disp.post(f"/console/api/cases/{joined.case.number}/actions/split",
                        {"attached_id": attached["id"], "reason": "其实是另一盏灯"})
    assert r.status_code == 200, await r.get_json()
    new_number = (await r.get_json())["number"]
    assert new_number not in (target.number, source.number)
    assert (await disp.get(f"/console/api/cases/{new_number}")).status_code == 200
    assert {a.target for a in await _audit(services, "merge")} == {source.number}
    assert len(await _audit(services, "split")) == 1


async def test_case_page_shows_timeline_photos_and_location(app, services: Services) -> None:
    located = services.locator.from_text(LAMP_ADDRESS)
    filing = await services.cases.file(
        CaseDraft(text=LAMP, item_code=next(c.code for c in services.catalogue.items
                                            if c.name == "路灯"),
                  grid_code=located.spot.grid.code, lat=located.spot.lat, lon=located.spot.lon,
                  address=LAMP_ADDRESS,
                  media=["https://media.example.org/lamp.jpg", "AgACAgUAAxkBAAIBQ2ZlongfileId"]),
        ReporterRef("telegram", "tg-42"))
    c = Console(app)
    await c.login("sup")
    r = await c.get(f"/console/cases/{filing.case.number}")
    html = await r.get_data(True)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert 'href="https://media.example.org/lamp.jpg"' in html
    assert "tg-42" not in html
    assert f"{located.spot.lat:.5f}" in html and "Telegram" in html
    view = await (await c.get(f"/console/api/cases/{filing.case.number}")).get_json()
    # The Telegram photo is served by the console (fetched from Telegram once); with no
    # Telegram channel running here it cannot be fetched: a page saying so, not an image.
    tg_photo = view["photos"][1]
    assert tg_photo["thumb"] in html.replace("&amp;", "&") and tg_photo["ref"] == ""
    r = await c.get(tg_photo["full"])
    assert r.status_code == 404 and "照片暂时无法显示" in await r.get_data(True)
    assert [e["status"] for e in view["timeline"]] == ["reported", "filed", "dispatched"]
    assert view["timeline"][0]["actor"] == "市民" and len(view["photos"]) == 2
    assert view["reporter"] == {"channel": "telegram", "phone": "", "may_reveal": False}


async def test_a_video_plays_on_the_case_page_for_staff_who_may_see_the_case(
        app, services: Services, tmp_path: Path) -> None:
    """A citizen's short video: a <video> player on the case page, served as video/mp4 (with
    byte ranges, which players seek by) to staff who may see the case, 404 to others."""
    from bot.media_store import keep_video, open_store
    from tests.fixtures.video import MP4

    services.config.media.local_dir = str(tmp_path / "media")
    ref = await keep_video(open_store(services.config), MP4, services.config.media.video_max_bytes)
    located = services.locator.from_text(LAMP_ADDRESS)
    assert located.spot is not None
    code = next(c for c in services.catalogue.items if c.name == "路灯").code
    number = (await services.cases.file(
        CaseDraft(text=LAMP, item_code=code, grid_code=located.spot.grid.code,
                  lat=located.spot.lat, lon=located.spot.lon, media=[ref]),
        ReporterRef("telegram", "tg-video"), attach_duplicates=False)).case.number
    c = Console(app)
    await c.login("sup")
    view = await (await c.get(f"/console/api/cases/{number}")).get_json()
    [video] = view["photos"]
    assert video["video"] is True and video["kind"] == "video" and video["full"]
    html = (await (await c.get(f"/console/cases/{number}")).get_data(True)).replace("&amp;", "&")
    assert f'<video class="case-video" controls preload="metadata" src="{video["full"]}"' in html
    r = await c.get(video["full"])
    assert r.status_code == 200 and r.headers["Content-Type"] == "video/mp4"
    assert await r.get_data() == MP4 and r.headers["X-Content-Type-Options"] == "nosniff"
    r = await c.get(video["full"], headers={"Range": "bytes=0-9"})
    assert r.status_code == 206 and await r.get_data() == MP4[:10]
    assert r.headers["Content-Range"] == f"bytes 0-9/{len(MP4)}"
    # Not a picture: no thumbnail of it.
    assert (await c.get(video["full"] + "?size=thumb")).status_code == 404
    # A grid leader of another street may not see the case, nor its video.
    other = Console(app)
    await other.login("zhangcha")
    assert (await other.get(video["full"])).status_code == 404
    assert (await Console(app).get(video["full"])).status_code in (302, 401)

