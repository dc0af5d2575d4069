"""Worker and dispatcher actions: who may act, stale buttons, races, on-the-spot, 核查."""

from __future__ import annotations

import asyncio

import pytest

from bot.actions import ActionRefused
from bot.cases import CaseDraft, ReporterRef
from bot.models import Case, Worker
from bot.services import Services
from bot.workflow import Status
from tests.conftest import FakeClock

GRID = "440604001030103"  # 同济社区第3网格
OTHER_GRID = "440604001010101"  # 东华社区第1网格, same street
STREET = "440604001"  # 祖庙街道
OTHER_STREET = "440604002"


async def _case(s: Services, level: str = "grid", spot: int = 0) -> Case:
    code = next(i.code for i in s.catalogue.items if i.level == level and not i.urgent)
    filing = await s.cases.file(
        CaseDraft(text="楼下堆满了垃圾", item_code=code, grid_code=GRID,
                  lat=23.0215 + 0.01 * spot, lon=113.1214),
        ReporterRef("http", f"citizen-{spot}"))
    return filing.case


async def _worker(s: Services, clock: FakeClock, name: str, scope: str,
                  role: str = "grid_worker") -> Worker:
    return await s.teams.add_worker(name, role, scope, "telegram", f"tg-{name}", clock())


async def test_accept_arrive_resolve_verify_close(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    case = await _case(s)
    mine = await _worker(s, clock, "李静平", f"grid:{GRID}")
    leader = await _worker(s, clock, "冯永丽", f"grid:{GRID}", "grid_leader")
    assert (await s.actions.accept(case.number, mine)).status == Status.HANDLING
    await s.actions.arrive(case.number, mine)
    done = await s.actions.resolve(case.number, mine, "已清运", ["photo-after"])
    assert done.status == Status.HANDLED
    with pytest.raises(ActionRefused) as refused:
        await s.actions.verify(case.number, mine, fixed=True)
    assert refused.value.key == "not_own_work" and "核查" in refused.value.text()
    colleague = await _worker(s, clock, "王同事", f"grid:{GRID}")  # a worker, not a checker
    with pytest.raises(ActionRefused) as refused:
        await s.actions.verify(case.number, colleague, fixed=True)
    assert refused.value.key == "checkers_only"
    closed = await s.actions.verify(case.number, leader, fixed=True, note="现场已干净")
    assert closed.status == Status.CLOSED
    case = await s.cases.get(case.number)
    assert [e.action for e in case.events].count("arrive") == 1
    assert [m.ref for m in case.media] == ["photo-after"]


async def test_only_workers_of_the_grid_or_above_may_act(
    clocked: Services, clock: FakeClock
) -> None:
    s = clocked
    case = await _case(s)
    stranger = await _worker(s, clock, "路人", f"grid:{OTHER_GRID}")
    elsewhere = await _worker(s, clock, "外街", f"street:{OTHER_STREET}", "street_staff")
    street = await _worker(s, clock, "街道", f"street:{STREET}", "street_staff")
    for who in (stranger, elsewhere, None):
        with pytest.raises(ActionRefused) as refused:
            await s.actions.accept(case.number, who)
        assert refused.value.key == "not_yours"
    assert (await s.cases.get(case.number)).status == Status.DISPATCHED  # nothing changed
    assert (await s.actions.accept(case.number, street)).status == Status.HANDLING


async def test_two_workers_press_accept_at_once_and_exactly_one_wins(
    clocked: Services, clock: FakeClock
) -> None:
    s = clocked
    case = await _case(s)
    a = await _worker(s, clock, "甲", f"grid:{GRID}")
    b = await _worker(s, clock, "乙", f"grid:{GRID}")
    results = await asyncio.gather(s.actions.accept(case.number, a),
                                   s.actions.accept(case.number, b), return_exceptions=True)
    assert sum(isinstance(r, Case) for r in results) == 1
    loser = next(r for r in results if isinstance(r, Exception))
    assert isinstance(loser, ActionRefused) and loser.key == "moved_on"
    case = await s.cases.get(case.number)
    assert [e.to_status for e in case.events].count("handling") == 1


async def test_a_stale_button_gets_a_clear_answer(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    case = await _case(s)
    w = await _worker(s, clock, "甲", f"grid:{GRID}")
    leader = await _worker(s, clock, "长", f"grid:{GRID}", "grid_leader")
    await s.actions.resolve(case.number, w, "现场已处理")  # on the spot (即办)
    await s.actions.verify(case.number, leader, fixed=True)
    with pytest.raises(ActionRefused) as refused:
        await s.actions.accept(case.number, w)
    assert refused.value.key == "moved_on" and "已结案" in refused.value.text()
    with pytest.raises(ActionRefused) as refused:
        await s.actions.accept("20990101-9999", w)
    assert refused.value.key == "not_found"
    case = await s.cases.get(case.number)
    assert "on_spot" in [e.action for e in case.events]


async def test_on_the_spot_is_for_grid_items_of_ones_own_grid(
    clocked: Services, clock: FakeClock
) -> None:
    s = clocked
    case = await _case(s, level="district")
    w = await _worker(s, clock, "甲", f"grid:{GRID}")
    with pytest.raises(ActionRefused) as refused:
        await s.actions.resolve(case.number, w, "处理了")
    assert refused.value.key in ("accept_first", "not_yours")


async def test_not_fixed_goes_out_again_and_hand_up_reaches_the_street(
    clocked: Services, clock: FakeClock
) -> None:
    s = clocked
    case = await _case(s)
    w = await _worker(s, clock, "甲", f"grid:{GRID}")
    leader = await _worker(s, clock, "长", f"grid:{GRID}", "grid_leader")
    await s.actions.accept(case.number, w)
    await s.actions.resolve(case.number, w, "清了一半")
    again = await s.actions.verify(case.number, leader, fixed=False, note="还有垃圾")
    assert again.status == Status.DISPATCHED and again.current_level == "grid"
    up = await s.actions.hand_up(case.number, w, "需要环卫车")
    assert up.current_level == "street" and up.assignee == f"street:{STREET}"
    with pytest.raises(ActionRefused):
        await s.actions.give_back(case.number, w, "")


async def test_dispatchers_reassign_with_a_reason(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    case = await _case(s)
    worker = await _worker(s, clock, "甲", f"grid:{GRID}")
    dispatcher = await _worker(s, clock, "派", "district:440604", "dispatcher")
    with pytest.raises(ActionRefused) as refused:
        await s.actions.reassign(case.number, worker, f"grid:{OTHER_GRID}", "位置有误")
    assert refused.value.key == "dispatchers_only"
    moved = await s.actions.reassign(case.number, dispatcher, f"grid:{OTHER_GRID}", "位置有误")
    assert moved.assignee == f"grid:{OTHER_GRID}" and moved.status == Status.DISPATCHED
    case = await s.cases.get(case.number)
    assert "位置有误" in case.events[-1].note


async def test_bind_codes_work_once_and_bound_groups_get_the_cards(
    clocked: Services, clock: FakeClock
) -> None:
    s = clocked
    code = await s.teams.new_bind_code(GRID)
    assert await s.teams.bind(code, "telegram", "-555", clock()) == GRID
    assert await s.teams.bind(code, "telegram", "-556", clock()) is None  # used up
    assert await s.teams.grid_of_group("telegram", "-555") == GRID
    case = await _case(s)
    from sqlalchemy import select

    from bot.models import OutboxMessage
    async with s.db.session() as session:
        cards = (await session.execute(select(OutboxMessage).where(
            OutboxMessage.case_id == case.id))).scalars().all()
    assert [(c.channel, c.recipient) for c in cards] == [("telegram", "-555")]
    assert await s.teams.unbind("telegram", "-555")
    with pytest.raises(ValueError, match="no grid"):
        await s.teams.new_bind_code("nope")


async def test_dispatchers_merge_two_cases_and_split_a_report_off(
    clocked: Services, clock: FakeClock
) -> None:
    from sqlalchemy import select

    from bot.models import OutboxMessage

    s = clocked
    first, second = await _case(s, spot=0), await _case(s, spot=1)  # ~1 km apart
    dispatcher = await _worker(s, clock, "派", "district:440604", "dispatcher")
    worker = await _worker(s, clock, "甲", f"grid:{GRID}")
    with pytest.raises(ActionRefused) as refused:
        await s.actions.merge(second.number, first.number, worker, "同一问题")
    assert refused.value.key == "dispatchers_only"
    with pytest.raises(ActionRefused) as refused:
        await s.actions.merge(first.number, first.number, dispatcher, "同一问题")
    assert refused.value.key == "cannot_merge"

    target = await s.actions.merge(second.number, first.number, dispatcher, "同一堆垃圾")
    assert target.number == first.number
    merged = await s.cases.get(second.number)
    assert merged.status == Status.REJECTED and merged.merged_into == first.number
    # The second reporter now follows the first case, and was told so.
    mine = await s.cases.for_reporter(ReporterRef("http", "citizen-1"))
    assert first.number in [c.number for c in mine]
    async with s.db.session() as session:
        told = (await session.execute(select(OutboxMessage.text).where(
            OutboxMessage.recipient.like("reporter:%")))).scalars().all()
    assert any("合并" in text and first.number in text for text in told)

    from bot.models import AttachedReport
    async with s.db.session() as session:
        attached = (await session.execute(select(AttachedReport))).scalars().one()
    new = await s.actions.split(first.number, attached.id, dispatcher, "其实是两处")
    assert new.number not in (first.number, second.number)
    assert new.status == Status.DISPATCHED
    followed = [c.number for c in await s.cases.for_reporter(ReporterRef("http", "citizen-1"))]
    assert new.number in followed and first.number not in followed
    events = [e.action for e in (await s.cases.get(first.number)).events]
    assert "merge" in events and "split" in events
    with pytest.raises(ActionRefused) as refused:
        await s.actions.split(first.number, attached.id, dispatcher, "再拆")
    assert refused.value.key == "not_found"
