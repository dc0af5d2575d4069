"""Issue 15's privacy and idempotency findings, each reproduced as the attacker did it:
personal data on the public Open311 feed, a report lost while its retry is told "already
filed", a follower reading and rating someone else's case, staff names and internal notes on
public timelines, and the 500s that bad input used to cause."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from bot.cases import CaseDraft, ReporterRef, report_key
from bot.messages import InboundMessage, Location
from bot.models import Case, CaseMedia, OutboxMessage
from bot.services import Services
from bot.teams import TeamsError
from handlers.router import handle
from shell.app import create_app

LOOPBACK = {"client": ("127.0.0.1", 5000)}
PIN = {"lat": 23.0215, "lon": 113.1214}
PHONE, ID_CARD, NAME = "13800138000", "440604199001011234", "王小明"
LEAKY_ADDRESS = f"张槎花园3栋502 {NAME} {PHONE} 身份证{ID_CARD}\u202e"


def _no_personal_data(body: str) -> None:
    for secret in (PHONE, ID_CARD, NAME, "\u202e", "13912345678", "陈女士"):
        assert secret not in body, secret


async def test_personal_data_never_reaches_the_public_feed_or_the_team(
        services: Services) -> None:
    client = create_app(services.config, services, background=False).test_client()
    r = await client.post("/api/v1/reports", scope_base=LOOPBACK, json={
        "user": "leaky", "text": "路口的污水井盖不见了", "address": LEAKY_ADDRESS,
        "location": PIN})
    assert r.status_code == 201
    number = (await r.get_json())["case"]["number"]
    # A hotline intake address with the caller's name and number, filed as the console does.
    hotline = await services.cases.file(
        CaseDraft(text="路灯不亮", item_code="C0118", grid_code=(await services.cases.get(
            number)).grid_code, lat=23.0216, lon=113.1215,
            address="岭南天地 来电人陈女士 13912345678"), ReporterRef("hotline", "call-1"))

    feed = await client.get("/open311/v2/requests.json?status=open")
    one = await client.get(f"/open311/v2/requests/{hotline.case.number}.json")
    xml = await client.get("/open311/v2/requests.xml?status=open")
    for answer in (feed, one, xml):
        assert answer.status_code == 200
        body = await answer.get_data(as_text=True)
        if answer is not xml:
            body = json.dumps(json.loads(body), ensure_ascii=False)
        _no_personal_data(body)
    entries = {e["service_request_id"]: e for e in await feed.get_json()}
    assert entries[number]["address"]  # a place people can find, not the typed text

    # Stored masked: the team's card, the console and every later view see no identity.
    async with services.db.session() as session:
        stored = (await session.execute(select(Case.address))).scalars().all()
        cards = (await session.execute(select(OutboxMessage.text))).scalars().all()
    _no_personal_data(json.dumps([*stored, *cards], ensure_ascii=False))


async def test_a_failed_filing_leaves_its_report_id_for_the_retry(services: Services) -> None:
    client = create_app(services.config, services, background=False).test_client()
    body = {"user": "form", "text": "小区门口路灯不亮，晚上很黑", "report_id": "m1",
            "location": PIN}

    # An over-long media reference is bad input: 400 before anything is written.
    r = await client.post("/api/v1/reports", scope_base=LOOPBACK,
                          json={**body, "media": ["https://x.example/" + "a" * 600]})
    assert r.status_code == 400
    # A filing that fails inside (storage down) keeps nothing either.
    real_file_once = services.cases.filing._file_once
    calls = 0

    async def failing(*args, **kwargs):
        nonlocal calls
        calls += 1
        raise ConnectionError("database went away")

    services.cases.filing._file_once = failing  # type: ignore[method-assign]
    try:
        r = await client.post("/api/v1/reports", scope_base=LOOPBACK, json=body)
        assert r.status_code == 500 and calls == 1
    finally:
        services.cases.filing._file_once = real_file_once  # type: ignore[method-assign]

    r = await client.post("/api/v1/reports", scope_base=LOOPBACK, json=body)
    assert r.status_code == 201  # the retry files: the id was never marked
    filed = (await r.get_json())["case"]["number"]
    again = await client.post("/api/v1/reports", scope_base=LOOPBACK, json=body)
    assert again.status_code == 409
    assert (await again.get_json())["case"]["number"] == filed
    async with services.db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Case))).scalar() == 1
    assert (await services.cases.filed_by(report_key("http", "form", "m1"))).case.number \
        == filed


async def test_a_dialog_confirm_files_once_and_ignores_overlong_media(
        services: Services) -> None:
    async def say(text: str = "", **extra) -> str:
        outcome = await handle(InboundMessage("http", "u-media", text, **extra), services)
        return "\n".join(r.text for r in outcome.replies)

    await say("", media=["x" * 600])  # a reference no channel could send
    await say("季华五路18号门口路灯不亮，晚上很黑")
    answer = await say("", location=Location(PIN["lat"], PIN["lon"]))
    if "回复序号" in answer:
        answer = await say("1")
    state = await services.dialogs.load("http", "u-media")
    assert state["step"] == "confirm"
    answer = await say("确认", message_id="confirm-1")
    assert "已受理" in answer
    async with services.db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Case))).scalar() == 1
        assert (await session.execute(
            select(func.count()).select_from(CaseMedia))).scalar() == 0
    # The same draft confirmed again (a channel retry after a crash kept the state) files
    # nothing new: its key is in the database with the case.
    await services.dialogs.save("http", "u-media", state)
    answer = await say("确认", message_id="confirm-2")
    async with services.db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Case))).scalar() == 1


async def test_a_follower_sees_the_status_only_and_cannot_rate(services: Services) -> None:
    client = create_app(services.config, services, background=False).test_client()
    first = await client.post("/api/v1/reports", scope_base=LOOPBACK, json={
        "user": "first", "text": "这里的污水井盖被偷了，我家在3栋502", "location": PIN,
        "item_code": "C0102", "address": "季华五路18号"})
    number = (await first.get_json())["case"]["number"]
    # Someone who read the point and service code on Open311 reports "the same" problem.
    snoop = await client.post("/api/v1/reports", scope_base=LOOPBACK, json={
        "user": "snoop", "text": "井盖没了", "location": PIN, "item_code": "C0102"})
    joined = await snoop.get_json()
    assert joined["attached"] and joined["case"]["number"] == number
    assert joined["case"]["text"] is None and "3栋502" not in json.dumps(joined)

    view = await (await client.get(f"/api/v1/cases/{number}?user=snoop",
                                   scope_base=LOOPBACK)).get_json()
    assert view["own"] is False and view["text"] is None and view["photos"] == 0
    assert "3栋502" not in json.dumps(view, ensure_ascii=False)
    mine = await (await client.get(f"/api/v1/cases/{number}?user=first",
                                   scope_base=LOOPBACK)).get_json()
    assert mine["own"] is True and "3栋502" in mine["text"]

    case = await services.cases.get(number)
    handler = await services.teams.add_worker("李街道", "street_staff", case.assignee,
                                              "telegram", "tg-1", services.cases.clock())
    checker = await services.teams.add_worker("王街道", "street_staff", case.assignee,
                                              "telegram", "tg-2", services.cases.clock())
    await services.actions.accept(number, handler)
    await services.actions.resolve(number, handler, "已更换新井盖")
    await services.actions.verify(number, checker, fixed=True)
    refused = await handle(InboundMessage("http", "snoop", f"评价 {number} 1"), services)
    assert (await services.cases.get(number)).status == "closed"  # not reopened by snoop
    assert "评价" not in refused.replies[0].text or "感谢" not in refused.replies[0].text
    await services.cases.rate(number, ReporterRef("http", "first"), 5)
    assert (await services.cases.get(number)).rating == 5


async def test_public_timelines_name_no_staff_and_carry_no_internal_notes(
        services: Services) -> None:
    client = create_app(services.config, services, background=False).test_client()
    r = await client.post("/api/v1/reports", scope_base=LOOPBACK, json={
        "user": "citizen", "text": "路口的污水井盖不见了", "location": PIN,
        "item_code": "C0102"})
    number = (await r.get_json())["case"]["number"]
    case = await services.cases.get(number)
    lead = await services.teams.add_worker("lead1", "street_staff", case.assignee, "telegram",
                                           "tg-3", services.cases.clock())
    await services.actions.accept(number, lead)
    async with services.db.session() as session, session.begin():
        row = (await session.execute(select(Case).where(Case.number == number))).scalar_one()
        services.cases.event(session, row, "system", "urge", None, None,
                             services.cases.clock(), "内部督办：街道周五前必须处理")
    reporter = json.dumps(await (await client.get(f"/api/v1/cases/{number}?user=citizen",
                                                  scope_base=LOOPBACK)).get_json(),
                          ensure_ascii=False)
    public = json.dumps(await (await client.get(f"/open311/v2/requests/{number}.json"))
                        .get_json(), ensure_ascii=False)
    for body in (reporter, public):
        assert "lead1" not in body and "内部督办" not in body
    assert "工作人员已接单处理" in reporter


async def test_bad_input_is_a_400_in_each_surface_s_own_format(services: Services) -> None:
    client = create_app(services.config, services, background=False).test_client()
    for date in ("0001-01-01", "9999-12-31"):
        r = await client.get(f"/open311/v2/requests.json?start_date={date}")
        assert r.status_code == 400 and (await r.get_json())[0]["code"] == 400
    deep = "[" * 100_000
    r = await client.post("/api/v1/messages", scope_base=LOOPBACK, data=deep,
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "error" in await r.get_json()


async def test_dispatch_only_to_departments_that_exist(services: Services) -> None:
    try:
        services.teams.check_scope("department:不存在的部门")
    except TeamsError as exc:
        assert "不存在的部门" in str(exc)
    else:
        raise AssertionError("an unknown department was accepted")
    services.teams.check_scope("department:区城市管理和综合执法局")
