"""adapters/console/events.py: GET /console/events, the live stream of case changes — for
the signed in only, number and status only, and ended once the session is."""

from __future__ import annotations

import asyncio

import pytest

from adapters.console import events
from bot.services import Services
from shell.app import create_app
from tests.test_console import Console, _lamp_case, _users

sqlite_only = pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)


@sqlite_only
async def test_no_stream_without_a_session(services: Services) -> None:
    app = create_app(services.config, services, background=False)
    r = await Console(app).get("/console/events")
    assert r.status_code == 401 and "error" in await r.get_json()


async def _next_event(connection: object) -> bytes:
    got = b""
    while b"event: case" not in got:
        got += await asyncio.wait_for(connection.receive(), 5)  # type: ignore[attr-defined]
    return got


@sqlite_only
async def test_the_stream_carries_number_and_status_and_ends_with_the_session(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "RECHECK_S", 0)  # look at the session before every event
    await _users(services)
    app = create_app(services.config, services, background=False)
    sup = Console(app)
    await sup.login("sup")
    async with sup.client.request("/console/events", scope_base=sup.scope) as connection:
        await connection.send_complete()
        first = await asyncio.wait_for(connection.receive(), 5)
        assert first.startswith(b"retry: 3000\n: connected")
        await asyncio.sleep(0.2)  # the subscription is in place
        case = await _lamp_case(services)
        event = (await _next_event(connection)).decode()
        assert f'"number": "{case.number}"' in event and '"status": "dispatched"' in event
        assert "季华五路" not in event and "13812345678" not in event  # the page fetches the rest
        # Signed out (from another tab): the next change ends the stream instead of going out.
        r = await sup.post("/console/logout")
        assert r.status_code == 302
        await services.cases.transition(case.number, "rejected", "test", "无效")
        rest = []
        while not rest or rest[-1] != b"":  # the body's last (empty) part: the stream ended
            rest.append(await asyncio.wait_for(connection.receive(), 5))
        assert b"rejected" not in b"".join(rest)
