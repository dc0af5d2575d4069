"""The console's 回访 (follow-up call) form over HTTP, on both storage set-ups: offered on a
closed hotline case to intake staff, recorded on the timeline, one result per closure, and
counted by `gridbot stats` like a chat rating."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.services import Services
from bot.workflow import Status
from shell.app import create_app
from tests.gridbot_cli import gridbot
from tests.test_console import Console, _audit, _lamp_case, _users


async def _closed(s: Services, phone: str | None = "13812345678") -> str:
    case = await _lamp_case(s, phone)
    for status in (Status.HANDLING, Status.HANDLED, Status.VERIFIED, Status.CLOSED):
        await s.cases.transition(case.number, status, "test")
    return case.number


def _stats(s: Services) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    result = gridbot("stats", "--from", today.isoformat(),
                     "--to", (today + timedelta(days=1)).isoformat(), "--json",
                     env={**os.environ, "GRIDBOT_DATABASE_URL": s.config.database_url,
                          "GRIDBOT_REDIS_URL": s.config.redis.url,
                          "GRIDBOT_NLP_MODEL_DIR": s.config.nlp.model_dir})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_a_callback_is_recorded_once_per_closure_and_counted_in_stats(
        services: Services) -> None:
    s = services
    await _users(s)
    app = create_app(s.config, s, background=False)
    op, city = Console(app), Console(app)
    await op.login("op")
    await city.login("city")
    open_case = (await _lamp_case(s)).number
    number = await _closed(s)

    # Offered on the closed hotline case, to intake staff only; not on an open one.
    page = await (await op.get(f"/console/cases/{number}")).get_data(as_text=True)
    assert 'id="callback-form"' in page
    page = await (await op.get(f"/console/cases/{open_case}")).get_data(as_text=True)
    assert 'id="callback-form"' not in page
    r = await city.post(f"/console/api/cases/{number}/callback", {"reached": False})
    assert r.status_code == 403
    r = await op.post(f"/console/api/cases/{open_case}/callback",
                      {"reached": True, "score": 5})
    assert r.status_code == 409 and "尚未结案" in (await r.get_json())["error"]
    for bad in ({"reached": True}, {"reached": True, "score": 9},
                {"reached": True, "score": "5"}, {"reached": True, "score": True}):
        r = await op.post(f"/console/api/cases/{number}/callback", bad)
        assert r.status_code == 422, bad
    assert _stats(s)["rated"] == 0

    # Not reached: on the timeline, not a rating. Reached with 4: this closure's rating.
    r = await op.post(f"/console/api/cases/{number}/callback",
                      {"reached": False, "note": "无人接听"})
    assert r.status_code == 200
    r = await op.post(f"/console/api/cases/{number}/callback",
                      {"reached": True, "score": 4, "note": "路灯已亮，满意"})
    assert r.status_code == 200, await r.get_json()
    view = await (await op.get(f"/console/api/cases/{number}")).get_json()
    calls = [e for e in view["timeline"] if e["action"] == "callback"]
    assert [(e["label"], e["actor"]) for e in calls] == [("回访", "接线员小李")] * 2
    assert "未能联系上" in calls[0]["note"] and "满意度 4 分" in calls[1]["note"]
    assert view["callback"] == {"offered": False, "recorded": 4}
    page = await (await op.get(f"/console/cases/{number}")).get_data(as_text=True)
    assert 'id="callback-form"' not in page and "本次结案的回访已记录：4 分" in page
    r = await op.post(f"/console/api/cases/{number}/callback", {"reached": True, "score": 1})
    assert r.status_code == 409  # one result per closure
    assert [a.detail for a in await _audit(s, "callback")] == [
        {"reached": False, "score": None}, {"reached": True, "score": 4}]

    figures = _stats(s)
    assert (figures["rated"], figures["satisfaction_rate"]) == (1, 1.0)
