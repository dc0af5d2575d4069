"""Access by guessing: no case is read or acted on by knowing (or trying) its number.

- Reporters: on every /api/v1 endpoint and in the dialog of every chat channel (HTTP,
  Telegram, WeChat) someone else's case answers exactly like a number that does not exist.
- Workers: outside the case's grid nobody can act, by Telegram button or WeCom command, and
  the refusal shows nothing of the case.
- Identities: a full flow by reporters who wrote their phone numbers, with every channel's
  outgoing traffic (fake Telegram, WeChat and WeCom servers) and the logs captured — no
  phone number and no reporter id reaches a group, a worker or a log line.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters import telegram
from bot.cases import CaseDraft, ReporterRef
from bot.services import Services
from bot.workflow import Status
from shell.app import create_app
from tests.fixtures.wechat.fake_api import FakeWeChat
from tests.test_telegram import (
    CITIZEN,
    GROUP,
    LEADER,
    OUTSIDER,
    WORKER,
    Telegram,
    _bind,
    _start,
    _workers,
    group_command,
    press,
    private_location,
    private_text,
)
from tests.test_wechat import PIN
from tests.test_wechat import connect as connect_wechat
from tests.test_wechat import report as wechat_report
from tests.test_wecom import bind_robot
from tests.test_wecom import connect as connect_wecom

GRID = "440604001030103"  # 同济社区第3网格
OTHER_GRID = "440604001010101"  # 东华社区第1网格
PHONE = "13912345678"
LOOPBACK = {"client": ("127.0.0.1", 5000)}
NEVER = "20991231-9999"  # a well-formed number no case has


@pytest.fixture
async def tg(services: Services) -> AsyncIterator[Telegram]:
    driver = await _start(services)
    yield driver
    await telegram.stop(services)


async def _file(s: Services, reporter: ReporterRef, text: str = "楼下堆满了垃圾") -> str:
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    filing = await s.cases.file(CaseDraft(text=text, item_code=code, grid_code=GRID,
                                          lat=PIN[0], lon=PIN[1]), reporter)
    return filing.case.number


def _same_but_number(a: str, b: str, number_a: str, number_b: str) -> bool:
    return a.replace(number_a, "N") == b.replace(number_b, "N")


# -- reporters: the HTTP API -----------------------------------------------------------------

async def test_every_api_endpoint_hides_other_peoples_cases(services: Services) -> None:
    client = create_app(services.config, services, background=False).test_client()
    r = await client.post("/api/v1/reports", json={
        "user": "owner", "text": f"季华五路18号路灯不亮，电话{PHONE}",
        "location": {"lat": PIN[0], "lon": PIN[1]}}, scope_base=LOOPBACK)
    assert r.status_code == 201
    filed = (await r.get_json())["case"]
    number = filed["number"]
    await services.outbox.run_once()

    async def get(path: str) -> tuple[int, Any]:
        response = await client.get(path, scope_base=LOOPBACK)
        return response.status_code, await response.get_json()

    assert (await get(f"/api/v1/cases/{number}?user=owner"))[0] == 200
    for user in ("guesser", "OWNER", "owner ", "owner%00"):
        theirs = await get(f"/api/v1/cases/{number}?user={user}")
        nothing = await get(f"/api/v1/cases/{NEVER}?user={user}")
        assert theirs[0] in (400, 404) and theirs == nothing, user
    # No user at all, or a case number with the owner's name in another channel.
    assert (await get(f"/api/v1/cases/{number}"))[0] == 404
    # Updates are per user: the guesser's feed stays empty whatever `after` they try.
    worker = await services.teams.add_worker("李静", "grid_worker",
                                             f"grid:{filed['grid']['code']}", "telegram",
                                             "tg-li", services.cases.clock())
    await services.actions.accept(number, worker)
    await services.outbox.run_once()
    owner_updates = (await get("/api/v1/updates?user=owner&after=0"))[1]["updates"]
    assert owner_updates and all(u["case"] == number for u in owner_updates)
    assert (await get("/api/v1/updates?user=guesser&after=0"))[1] == {"updates": []}
    # The chat commands over HTTP: status, rating, my cases.
    for text in (f"查询 {number}", f"评价 {number} 1"):
        theirs = await client.post("/api/v1/messages", json={"user": "guesser", "text": text},
                                   scope_base=LOOPBACK)
        nothing = await client.post("/api/v1/messages", json={
            "user": "guesser", "text": text.replace(number, NEVER)}, scope_base=LOOPBACK)
        a, b = await theirs.get_json(), await nothing.get_json()
        assert a["case"] is None
        assert _same_but_number(json.dumps(a, ensure_ascii=False),
                                json.dumps(b, ensure_ascii=False), number, NEVER), text
    mine = await client.post("/api/v1/messages", json={"user": "guesser", "text": "我的案件"},
                             scope_base=LOOPBACK)
    assert number not in json.dumps(await mine.get_json(), ensure_ascii=False)
    assert (await services.cases.get(number)).rating is None


# -- reporters: the chat channels ------------------------------------------------------------

async def test_telegram_dialog_hides_other_peoples_cases(tg: Telegram) -> None:
    number = await _file(tg.services, ReporterRef("telegram", str(CITIZEN)))
    guesser = 5559999
    mine = await tg.say(private_text(f"查询 {number}"), CITIZEN)
    assert number in mine and "状态" in mine
    for text in (f"查询 {number}", f"评价 {number} 1", "我的案件"):
        theirs = await tg.say(private_text(text, user=guesser), guesser)
        nothing = await tg.say(private_text(text.replace(number, NEVER), user=guesser), guesser)
        assert _same_but_number(theirs, nothing, number, NEVER), (text, theirs)
        assert "楼下堆满了垃圾" not in theirs
    assert (await tg.services.cases.get(number)).rating is None


async def test_wechat_dialog_hides_other_peoples_cases(services: Services, fake_api: FakeWeChat,
                                                       tmp_path: Path) -> None:
    server, _ = await connect_wechat(services, fake_api, tmp_path)
    number = await _file(services, ReporterRef("wechat", "o-owner"))
    assert number in await server.say("o-owner", f"查询 {number}")
    for text in (f"查询 {number}", f"评价 {number} 1", "我的案件"):
        theirs = await server.say("o-guesser", text)
        nothing = await server.say("o-guesser", text.replace(number, NEVER))
        assert _same_but_number(theirs, nothing, number, NEVER), (text, theirs)


# -- workers ---------------------------------------------------------------------------------

async def test_workers_outside_the_grid_cannot_act(tg: Telegram, fake_api: FakeWeChat,
                                                   tmp_path: Path) -> None:
    s = tg.services
    await _workers(s)
    await _bind(tg)
    number = await _file(s, ReporterRef("http", "owner"), f"井盖丢了，电话{PHONE}")
    await tg.deliver()
    events_before = [e.action for e in (await s.cases.get(number)).events]
    # Telegram: every button, from another grid's worker and from a stranger.
    for user in (OUTSIDER, 6669999):
        for action in ("accept", "arrive", "resolve", "give_back", "hand_up", "onspot"):
            await tg.send(press(f"act:{action}:{number}", user, GROUP))
            alert = tg.api.answers()[-1]["text"]
            assert "井盖" not in alert and PHONE not in alert
    # /cases in a group bound to another grid does not list the case.
    other_group = -1009999999
    code = await s.teams.new_bind_code(OTHER_GRID)
    await tg.say(group_command(f"/bind@gridbot_test_bot {code}", chat=other_group),
                 other_group)
    listed = await tg.say(group_command("/cases", chat=other_group), other_group)
    assert number not in listed
    # WeCom: the same commands by text, from another grid's worker and from a stranger.
    wecom = await connect_wecom(s, fake_api, tmp_path)
    await s.teams.add_worker("外格员", "grid_worker", f"grid:{OTHER_GRID}", "wecom", "wc-out",
                             s.cases.clock())
    for user in ("wc-out", "wc-stranger"):
        for command in ("接单", "到场", "办结", "退回", "上报"):
            reply = await wecom.say(user, f"{command} {number} 说明")
            assert "井盖" not in reply and PHONE not in reply, reply
    case = await s.cases.get(number)
    assert case.status == Status.DISPATCHED and case.assignee == f"grid:{GRID}"
    assert [e.action for e in case.events] == events_before


# -- identities never leak -------------------------------------------------------------------

async def test_no_phone_or_reporter_id_reaches_teams_or_logs(
    tg: Telegram, fake_api: FakeWeChat, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Libraries at INFO (python-telegram-bot echoes whole updates at DEBUG, a level no
    # deployment runs at); gridbot's own modules at DEBUG, so even its debug lines are held
    # to the rule.
    caplog.set_level(logging.INFO)
    for name in ("adapters", "bot", "handlers", "nlp"):
        caplog.set_level(logging.DEBUG, logger=name)
    s = tg.services
    await _workers(s)
    await _bind(tg)
    await bind_robot(s, GRID)
    wechat_server, wechat_channel = await connect_wechat(s, fake_api, tmp_path)
    await connect_wecom(s, fake_api, tmp_path)
    http = create_app(s.config, s, background=False).test_client()
    telegram_reporter, wechat_reporter, http_reporter = str(CITIZEN), "o-leaky-citizen", \
        "web-leaky-citizen"

    # Three reporters, each writing a phone number, through the whole dialog.
    text = f"我家小区门口的井盖不见了，晚上很危险，联系我{PHONE}"
    answer = await tg.say(private_text(text), CITIZEN)
    if "回复序号" in answer:
        answer = await tg.say(private_text("1"), CITIZEN)
    if "请确认" not in answer:
        answer = await tg.say(private_location(*PIN), CITIZEN)
    answer = await tg.say(private_text("确认"), CITIZEN)
    numbers = set(re.findall(r"\d{8}-\d{4}", answer))
    numbers |= set(re.findall(r"\d{8}-\d{4}", await wechat_report(
        wechat_server, wechat_reporter, f"小区门口的井盖不见了，我的手机{PHONE}")))
    r = await http.post("/api/v1/reports", json={
        "user": http_reporter, "text": f"季华五路18号井盖丢了 手机 {PHONE[:3]} {PHONE[3:7]} "
        f"{PHONE[7:]}", "location": {"lat": PIN[0], "lon": PIN[1]}}, scope_base=LOOPBACK)
    numbers.add((await r.get_json())["case"]["number"])
    # A web form that hands over the phone number as a field of the reporter.
    numbers.add(await _file(s, ReporterRef("http", "form-user", phone=PHONE), "路灯坏了"))
    assert numbers
    await tg.deliver()
    # Workers take the cases through to the end, on Telegram.
    for number in numbers:
        for action in ("accept", "arrive"):
            await tg.send(press(f"act:{action}:{number}", WORKER, GROUP))
        await tg.deliver()
    await tg.send(group_command("/cases", user=LEADER))
    await tg.deliver()
    await wechat_channel.drain()

    secrets = [PHONE, f"{PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}", telegram_reporter,
               wechat_reporter, http_reporter, "form-user"]
    reporter_chats = {CITIZEN}
    team_traffic = [json.dumps(params, ensure_ascii=False, default=str)
                    for method, params in tg.api.calls
                    if int(params.get("chat_id", 0) or 0) not in reporter_chats]
    team_traffic += [json.dumps(c.body, ensure_ascii=False, default=str)
                     for c in fake_api.sent("/cgi-bin/webhook/send")]  # WeCom group robots
    assert len(team_traffic) > 5  # cards, edits, /cases: the teams did hear about the cases
    for secret in secrets:
        for line in team_traffic:
            assert secret not in line, (secret, line[:200])
        assert secret not in caplog.text, secret
    # The stored case texts are masked; the public view carries no identity.
    for number in numbers:
        view = json.dumps(s.cases.public_view(await s.cases.get(number)), ensure_ascii=False)
        for secret in secrets:
            assert secret not in view, (number, secret)
