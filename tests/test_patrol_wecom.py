"""WeCom worker mode: a grid worker registered on WeCom patrols through the app callback —
开始巡查, a location pin every so often as the track (WeCom has no live location), a find
reported with words, a pin and a photo, closed on the spot (即办) with an after-photo, 结束巡查
— real wechatpy crypto against the local fake WeCom API."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from bot.coords import wgs84_to_gcj02
from bot.models import Patrol, PatrolPoint
from bot.services import Services
from bot.texts import t
from bot.workflow import Status
from tests.fixtures.wechat.fake_api import FakeWeChat, fixture
from tests.test_wechat import case_number, next_id
from tests.test_wecom import GRID, WeComServer, add_worker, connect

WORKER = "liujing"
START = (23.0215, 113.1214)  # WGS-84, inside GRID


async def pin(server: WeComServer, user: str, lat: float, lon: float) -> str:
    """A location message as WeCom sends it: GCJ-02, like every map app in China."""
    gcj = wgs84_to_gcj02(lat, lon)
    xml = fixture("wecom_location", userid=user, time=int(time.time()), lat=f"{gcj[0]:.6f}",
                  lon=f"{gcj[1]:.6f}", msgid=next_id())
    return await server.reply(await server.post(xml))


async def test_a_patrol_by_pins_with_a_find_closed_on_the_spot(
        services: Services, fake_api: FakeWeChat, tmp_path: Path) -> None:
    s = services
    work = await connect(s, fake_api, tmp_path)
    await add_worker(s, WORKER)
    started = await work.say(WORKER, "开始巡查")
    assert "开始巡查" in started and "发送一次位置" in started
    lat, lon = START
    for k in range(3):  # ~110 m a pin, walking south
        assert "已记录巡查位置" in await pin(work, WORKER, lat - 0.001 * k, lon)

    # A find: the words, the place (a pin: the track's next point too), a photo, 确认.
    answer = await work.say(WORKER, "路边墙上贴满了办证小广告，牛皮癣很多")
    if "回复序号" in answer:
        line = next(x for x in answer.splitlines() if "小广告" in x)
        answer = await work.say(WORKER, line.strip()[0])
    answer = await pin(work, WORKER, lat - 0.003, lon)
    assert "已记录巡查位置" not in answer  # the dialog took it as the report's place
    assert await work.photo(WORKER, "WECOM_before") == t("photo_received")
    filed = await work.say(WORKER, "确认")
    assert "巡查上报" in filed
    number = case_number(filed)
    case = await s.cases.get(number)
    assert case.source == "patrol" and case.channel == "wecom"
    assert [m.ref for m in case.media] == ["wecom:WECOM_before"]

    # 即办: the after-photo (no report under way: kept for the 办结), then 办结.
    assert await work.photo(WORKER, "WECOM_after") == t("wecom.photo_kept")
    done = await work.say(WORKER, f"办结 {number} 已清理干净")
    assert done == t("team.done", command="办结", number=number, status=t("status.handled"))
    case = await s.cases.get(number)
    assert case.status == Status.HANDLED and "on_spot" in [e.action for e in case.events]

    ended = await work.say(WORKER, "结束巡查")
    assert "巡查结束" in ended and "0.33 公里" in ended
    async with s.db.session() as session:
        patrol = (await session.execute(select(Patrol))).scalar_one()
        points = list((await session.execute(select(PatrolPoint).order_by(
            PatrolPoint.id))).scalars())
    assert len(points) == 4 and patrol.grid_code == GRID and not patrol.left_grid
    # Stored as WGS-84, back where the worker stood (GCJ-02 undone within a metre).
    assert abs(points[0].lat - lat) < 1e-5 and abs(points[0].lon - lon) < 1e-5
    # After the patrol a pin is an ordinary location again, never a track point.
    await pin(work, WORKER, lat, lon)
    async with s.db.session() as session:
        assert len(list((await session.execute(select(PatrolPoint))).scalars())) == 4


async def test_a_report_to_verify_reaches_the_wecom_group_and_is_passed_in_the_app(
        services: Services, fake_api: FakeWeChat, tmp_path: Path) -> None:
    from bot.cases import CaseDraft, ReporterRef
    from bot.config import PatrolConfig
    from tests.test_wecom import bind_robot, robot_messages

    s = services
    work = await connect(s, fake_api, tmp_path)
    await bind_robot(s)
    await add_worker(s, WORKER)
    await s.teams.add_worker("冯组长", "grid_leader", f"grid:{GRID}", "wecom", "fengzz",
                             s.cases.clock())
    s.verification.config = PatrolConfig(verify_items=["E0201"])
    held = await s.verification.hold(CaseDraft(
        text="墙上贴满小广告", item_code="E0201", grid_code=GRID, lat=START[0], lon=START[1],
        source="patrol"), ReporterRef("wecom", WORKER))
    number = held.case.number
    await s.outbox.run_once()
    [card] = robot_messages(fake_api)
    assert "待核实" in card and f"核实通过 {number}" in card
    # The worker who found it cannot pass it; the leader can, from the app.
    assert "网格长" in await work.say(WORKER, f"核实通过 {number}")
    own = await s.verification.hold(CaseDraft(
        text="电线杆上也贴了小广告", item_code="E0201", grid_code=GRID, lat=START[0],
        lon=START[1], source="patrol"), ReporterRef("wecom", "fengzz"))
    assert "上报人以外" in await work.say("fengzz", f"核实通过 {own.case.number}")
    assert (await s.cases.get(own.case.number)).status == Status.REPORTED
    done = await work.say("fengzz", f"核实通过 {number}")
    assert done == t("team.done", command="核实通过", number=number,
                     status=t("status.dispatched"))
    await s.outbox.run_once()
    cards = robot_messages(fake_api)
    assert len(cards) == 3 and any(f"接单 {number}" in c for c in cards)
