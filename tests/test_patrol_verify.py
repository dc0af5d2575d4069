"""核实 before filing: a patrol report of an item the district configured waits as reported
until the grid leader (or the street) passes it — filed and dispatched — or fails it with a
reason the worker reads; left waiting, it is urged (督办) through a case timer. Driven
through Telegram (the real python-telegram-bot against the fake Bot API)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from adapters import telegram
from bot.config import PatrolConfig
from bot.models import CaseTimer
from bot.services import Services
from bot.workflow import Status
from tests.conftest import FakeClock
from tests.test_telegram import (
    DEMO_POINT,
    GRID,
    GROUP,
    LEADER,
    NUMBER,
    SECOND,
    WORKER,
    Telegram,
    _bind,
    _start,
    _workers,
    group_text,
    press,
    private_location,
    private_photo,
    private_text,
)

ADS = "E0201"  # 非法小广告: a grid matter


@pytest.fixture
async def tg_clocked(clocked: Services) -> AsyncIterator[Telegram]:
    driver = await _start(clocked)
    yield driver
    await telegram.stop(clocked)


async def _patrol_find(tg: Telegram, words: str, lat: float, lon: float) -> str:
    """A worker's report from the street, as in the chat: words, the place, a photo, 确认.
    The bot's answer to the confirmation."""
    text = await tg.say(private_text(words, user=WORKER), WORKER)
    if "回复序号" in text:
        labels = [b["text"] for row in tg.api.last_to(WORKER)["reply_markup"]["inline_keyboard"]
                  for b in row]
        pick = next(i for i, label in enumerate(labels, 1) if "小广告" in label)
        await tg.say(private_text(str(pick), user=WORKER), WORKER)
    await tg.say(private_location(lat, lon, user=WORKER), WORKER)
    await tg.say(private_photo(user=WORKER), WORKER)
    return await tg.say(private_text("确认", user=WORKER), WORKER)


def _buttons(params: dict[str, Any]) -> list[str]:
    markup = params.get("reply_markup") or {}
    if isinstance(markup, str):
        markup = json.loads(markup)
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


def _last_card(tg: Telegram, number: str) -> dict[str, Any]:
    return [p for name, p in tg.api.calls
            if name in ("sendMessage", "sendPhoto", "editMessageText", "editMessageCaption")
            and int(p["chat_id"]) == GROUP
            and number in str(p.get("text") or p.get("caption") or "")][-1]


async def test_a_patrol_report_waits_for_verification_then_is_filed(
        tg_clocked: Telegram, clock: FakeClock) -> None:
    tg, s = tg_clocked, tg_clocked.services
    s.verification.config = PatrolConfig(verify_items=[ADS])
    await _workers(s)
    await _bind(tg)
    lat, lon = DEMO_POINT
    reply = await _patrol_find(tg, "路边墙上贴满了办证小广告，牛皮癣很多", lat - 0.001, lon)
    assert "需先核实" in reply
    number = NUMBER.search(reply).group(1)
    case = await s.cases.get(number)
    assert case.status == Status.REPORTED and case.source == "patrol"
    assert case.handling_due is None and [m.added_by for m in case.media] == ["citizen"]
    async with s.db.session() as session:
        kinds = list((await session.execute(select(CaseTimer.kind).where(
            CaseTimer.case_id == case.id))).scalars())
    assert kinds == ["verify"]  # no deadline runs before it is filed

    # The grid's group (the street has no chat) gets the report with its photo and the two
    # buttons; not the team's 接单.
    await tg.deliver()
    card = _last_card(tg, number)
    assert "待核实" in str(card.get("caption") or card.get("text"))
    assert _buttons(card) == [f"act:confirm_report:{number}", f"act:refuse_report:{number}"]

    # Nobody reached it in time: 督办 to the verifiers, once per wait.
    clock.advance(hours=3)
    assert await s.timers.run_once() == 1
    assert await s.timers.run_once() == 0
    await tg.deliver()
    assert any("【核实督办】" in m and number in m for m in tg.api.texts_to(GROUP))

    # The worker who found it may not pass it; another grid worker neither; the leader may.
    await tg.send(press(f"act:confirm_report:{number}", WORKER, GROUP))
    await tg.send(press(f"act:confirm_report:{number}", SECOND, GROUP))
    assert "网格长" in tg.api.answers()[-1]["text"]
    assert (await s.cases.get(number)).status == Status.REPORTED
    await tg.send(press(f"act:confirm_report:{number}", LEADER, GROUP))
    case = await s.cases.get(number)
    assert case.status == Status.DISPATCHED and case.assignee == f"grid:{case.grid_code}"
    assert case.handling_due is not None and case.handling_due > clock()
    async with s.db.session() as session:
        pending = list((await session.execute(select(CaseTimer.kind).where(
            CaseTimer.case_id == case.id, CaseTimer.done_at.is_(None)))).scalars())
    assert "verify" not in pending and "escalate" in pending
    await tg.deliver()
    assert any("已核实通过" in m and number in m for m in tg.api.texts_to(WORKER))
    # The card in the group is the team's now: 接单 and 即办 are offered.
    assert f"act:accept:{number}" in _buttons(_last_card(tg, number))
    # Filed, it is a patrol report like any: the worker may still close it on the spot.
    assert await s.timers.run_once() == 0


async def test_a_failed_verification_tells_the_worker_why(tg_clocked: Telegram,
                                                          clock: FakeClock) -> None:
    tg, s = tg_clocked, tg_clocked.services
    s.verification.config = PatrolConfig(verify_levels=["grid"])
    await _workers(s)
    await _bind(tg)
    lat, lon = DEMO_POINT
    reply = await _patrol_find(tg, "电线杆上贴了好多小广告", lat - 0.0015, lon)
    number = NUMBER.search(reply).group(1)
    # Typed in the group; a failure needs its reason.
    assert "原因" in await tg.say(group_text(f"核实不通过 {number}", user=LEADER), GROUP)
    assert (await s.cases.get(number)).status == Status.REPORTED
    done = await tg.say(group_text(f"核实不通过 {number} 照片里是正规的宣传栏", user=LEADER),
                        GROUP)
    assert "核实不通过成功" in done or "成功" in done
    case = await s.cases.get(number)
    assert case.status == Status.REJECTED
    await tg.deliver()
    told = [m for m in tg.api.texts_to(WORKER) if number in m][-1]
    assert "核实未通过" in told and "正规的宣传栏" in told
    clock.advance(hours=5)
    assert await s.timers.run_once() == 0  # the reminder went with the decision


async def test_only_configured_items_wait(tg_clocked: Telegram) -> None:
    s = tg_clocked.services
    s.verification.config = PatrolConfig(verify_levels=["district"])
    by_level = {str(i.level): i.code for i in s.catalogue.items}
    assert s.verification.needed(by_level["district"])
    assert not s.verification.needed(by_level["grid"])
    big = next(i for i in s.catalogue.items if str(i.level) == "grid")
    s.verification.config = PatrolConfig(verify_items=[big.big_class])
    assert s.verification.needed(big.code)
    s.verification.config = PatrolConfig()
    assert not any(s.verification.needed(i.code) for i in s.catalogue.items)


async def test_the_console_lists_reports_to_verify_and_decides_them(services: Services) -> None:
    """Staff find the reports waiting in the queue (status 已上报) and pass or fail them on
    the case page like any action; a failure needs its reason."""
    from bot.cases import CaseDraft, ReporterRef
    from bot.staff import add_user
    from shell.app import create_app
    from tests.test_console import PASSWORD, Console

    s = services
    s.verification.config = PatrolConfig(verify_items=[ADS])
    await s.teams.add_worker("李静平", "grid_worker", f"grid:{GRID}", "telegram", "6660001",
                             s.cases.clock())
    held = []
    for words in ("墙上贴满小广告", "电线杆上的小广告"):
        filing = await s.verification.hold(CaseDraft(
            text=words, item_code=ADS, grid_code=GRID, lat=DEMO_POINT[0], lon=DEMO_POINT[1],
            source="patrol"), ReporterRef("telegram", "6660001"))
        held.append(filing.case.number)
    await add_user(s.db, "sup", PASSWORD, "supervisor", grids=s.grids)
    console = Console(create_app(s.config, s, background=False))
    assert (await console.login("sup")).status_code == 302
    listed = await (await console.get("/console/api/cases?status=reported")).get_json()
    assert sorted(row["number"] for row in listed["cases"]) == sorted(held)
    page = await (await console.get(f"/console/api/cases/{held[0]}")).get_json()
    assert {"confirm_report", "refuse_report"} <= set(page["actions"])
    refused = await console.post(f"/console/api/cases/{held[1]}/actions/refuse_report", {})
    assert refused.status_code == 409
    done = await console.post(f"/console/api/cases/{held[1]}/actions/refuse_report",
                              {"reason": "重复上报"})
    assert done.status_code == 200
    done = await console.post(f"/console/api/cases/{held[0]}/actions/confirm_report", {})
    assert done.status_code == 200
    first, second = [await s.cases.get(n) for n in held]
    assert first.status == Status.DISPATCHED and second.status == Status.REJECTED
    assert any("重复上报" in e.note for e in second.events)


async def test_a_street_with_a_chat_verifies_there(tg_clocked: Telegram) -> None:
    """When the street has bound its chat, the report waits there (not in the grid's group)
    and the street's staff pass it with the button; the grid team then gets its card."""
    from tests.test_telegram import group_command

    tg, s = tg_clocked, tg_clocked.services
    s.verification.config = PatrolConfig(verify_items=[ADS])
    await _workers(s)
    await _bind(tg)
    street_chat, street_user = -1009000000077, 6660077
    code = await s.teams.new_bind_code("street:440604001")
    assert "祖庙街道" in await tg.say(group_command(f"/bind@gridbot_test_bot {code}",
                                                    chat=street_chat), street_chat)
    await s.teams.add_worker("街道核实员", "street_staff", "street:440604001", "telegram",
                             str(street_user), s.cases.clock())
    reply = await _patrol_find(tg, "路边墙上贴满了办证小广告，牛皮癣很多", *DEMO_POINT)
    number = NUMBER.search(reply).group(1)
    await tg.deliver()
    assert any("待核实" in m and number in m for m in tg.api.texts_to(street_chat))
    assert not any(number in m for m in tg.api.texts_to(GROUP))
    await tg.send(press(f"act:confirm_report:{number}", street_user, street_chat))
    assert (await s.cases.get(number)).status == Status.DISPATCHED
    await tg.deliver()
    assert f"act:accept:{number}" in _buttons(_last_card(tg, number))
