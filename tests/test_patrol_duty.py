"""Duty lists: a grid's patrol plan (every working day, past its planned places) set like
`gridbot patrol plan` does; a patrol's track passing near a planned place ticks it; a
working day with no patrol, or with planned places missed, is a 督办 in the grid's group
once its working hours are over — written once however many processes look."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters import telegram
from bot.duty import DutyError, DutyLists, PlannedPlace, ticked
from bot.models import OutboxMessage, Patrol
from bot.services import Services
from tests.conftest import FakeClock
from tests.gridbot_cli import gridbot
from tests.test_telegram import (
    GRID,
    GROUP,
    WORKER,
    Telegram,
    _bind,
    _start,
    _workers,
    live_location,
    private_text,
)

COMPOUND = (23.015344, 113.115102)  # 荷塘豪庭, the grid's one compound in the gazetteer
JUNCTION = "绿景路与汾江中路交叉口"  # 23.018799, 113.118478: named in the plan, never passed
WALK = [COMPOUND, (23.0160, 113.1160), (23.0170, 113.1170), (23.0175, 113.1178)]


@pytest.fixture
async def tg_clocked(clocked: Services) -> AsyncIterator[Telegram]:
    driver = await _start(clocked)
    yield driver
    await telegram.stop(clocked)


def _duty_rows(rows: list[OutboxMessage]) -> list[OutboxMessage]:
    return [r for r in rows if r.idempotency_key.startswith("duty:")]


async def _outbox(s: Services) -> list[OutboxMessage]:
    async with s.db.session() as session:
        return _duty_rows(list((await session.execute(
            select(OutboxMessage).order_by(OutboxMessage.id))).scalars()))


def test_a_track_ticks_the_places_it_passes_within_reach() -> None:
    near = PlannedPlace("近处", "school", 23.0201, 113.1214)  # ~11 m off the path
    far = PlannedPlace("远处", "market", 23.0200, 113.1230)  # ~160 m off
    track = [(23.0215, 113.1215), (23.0185, 113.1215)]
    assert ticked(track, [near, far], 50.0) == ["近处"]
    assert ticked(track, [near, far], 200.0) == ["近处", "远处"]
    assert ticked([], [near], 50.0) == [] and ticked(track, [], 50.0) == []


async def test_a_plan_ticks_places_and_a_missed_day_is_urged_once(
        tg_clocked: Telegram, clock: FakeClock) -> None:
    tg, s = tg_clocked, tg_clocked.services
    await _workers(s)
    await _bind(tg)
    # Monday 09:00: the plan — the grid's compounds and a named junction, every working day.
    places = s.duty.gazetteer_places(GRID, kinds=["compound"], names=[JUNCTION])
    assert [p.name for p in places] == ["荷塘豪庭", JUNCTION]
    await s.duty.set_plan(GRID, "workday", places)
    with pytest.raises(DutyError):
        s.duty.gazetteer_places(GRID, names=["火星基地"])
    with pytest.raises(DutyError):
        await s.duty.set_plan(GRID, "fortnight", places)
    # Monday's working hours end: it was planned during Monday, so Monday is not judged.
    clock.now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 18:00 local
    assert await s.duty.send_due() == 0

    # Tuesday: a patrol past the compound but not the junction.
    clock.now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 local
    assert await s.duty.send_due() == 0  # Monday, planned mid-day, still not judged
    assert "开始巡查" in await tg.say(private_text("开始巡查", user=WORKER), WORKER)
    for k, (lat, lon) in enumerate(WALK):
        clock.advance(minutes=3)
        await tg.say(live_location(lat, lon, WORKER, first=k == 0), WORKER)
    ended = await tg.say(private_text("结束巡查", user=WORKER), WORKER)
    assert "计划点位已巡 1/2" in ended and JUNCTION in ended
    async with s.db.session() as session:
        patrol = (await session.execute(select(Patrol))).scalar_one()
    assert patrol.places == ["荷塘豪庭"]
    clock.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 17:00: still working hours
    assert await s.duty.send_due() == 0
    clock.now = datetime(2026, 11, 24, 9, 31, tzinfo=UTC)  # 17:31: Tuesday is over
    # Two server processes look at once: one 督办.
    other = DutyLists(s.cases, s.config.patrol, s.gazetteer)
    assert sorted([await s.duty.send_due(), await other.send_due()]) == [0, 1]
    [row] = await _outbox(s)
    assert "没有经过这些计划点位" in row.text and JUNCTION in row.text
    assert "荷塘豪庭" not in row.text and row.recipient == str(GROUP)

    # Wednesday: nobody patrols. The evening check urges the group, once.
    clock.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 20:00 local
    assert await s.duty.send_due() == 1
    assert await s.duty.send_due() == 0
    await tg.deliver()
    urged = [m for m in tg.api.texts_to(GROUP) if "【巡查督办】" in m]
    assert len(urged) == 2 and "11月25日没有巡查记录" in urged[-1]
    # Thursday: a patrol past both places, still under way when the day is judged (its
    # track is read then): the plan was kept.
    clock.now = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    worker = await s.teams.worker("telegram", str(WORKER))
    assert worker is not None
    await s.patrols.start(worker, clock())
    for lat, lon in [*WALK, (23.0188, 113.1185)]:
        await s.patrols.add_point(worker, lat, lon, clock())
    clock.now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert await s.duty.send_due() == 0
    # The weekend comes: Friday is the last working day to judge (again: nobody patrolled).
    clock.now = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)  # Saturday noon
    assert await s.duty.send_due() == 1
    rows = await _outbox(s)
    assert [r.payload["period"] for r in rows] == [
        "workday:2026-11-24", "workday:2026-11-25", "workday:2026-11-27"]
    assert all(r.case_id is None and r.payload["kind"] == "notice" for r in rows)


async def test_the_last_period_follows_the_working_calendar(clocked: Services) -> None:
    duty = clocked.duty
    tz = clocked.cases.calendar.tz
    wednesday_noon = datetime(2026, 11, 25, 12, 0, tzinfo=tz)
    day = duty.last_period("workday", wednesday_noon)
    assert day is not None and day.start == datetime(2026, 11, 24, tzinfo=tz)
    week = duty.last_period("week", wednesday_noon)
    assert week is not None and week.start == datetime(2026, 11, 16, tzinfo=tz)
    assert week.due == datetime(2026, 11, 20, 17, 30, tzinfo=tz)
    assert week.end - week.start == timedelta(days=7)
    # National Day: the working days before it.
    holiday = duty.last_period("workday", datetime(2026, 10, 3, 12, 0, tzinfo=tz))
    assert holiday is not None and holiday.start.date().isoformat() == "2026-09-30"


async def test_a_week_plan_is_kept_by_one_patrol_in_the_week(clocked: Services,
                                                             clock: FakeClock) -> None:
    s = clocked
    await s.teams.add_worker("李静平", "grid_worker", f"grid:{GRID}", "telegram", "1", clock())
    clock.now = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)  # planned on the Sunday before
    await s.duty.set_plan(GRID, "week", [])
    worker = await s.teams.worker("telegram", "1")
    assert worker is not None
    clock.now = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # Thursday of the same week
    await s.patrols.start(worker, clock())
    await s.patrols.add_point(worker, *COMPOUND, clock())
    await s.patrols.end(worker, clock())
    clock.now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # the next Tuesday
    assert await s.duty.send_due() == 0  # patrolled; no planned places to miss
    clock.now = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # the Monday after a week unpatrolled
    assert await s.duty.send_due() == 1
    [row] = await _outbox(s)
    assert "11月30日起的这一周没有巡查记录" in row.text


def test_the_cli_sets_and_lists_plans(tmp_path: Path) -> None:
    env = {**os.environ, "GRIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/g.db"}
    done = gridbot("patrol", "plan", GRID, "--every", "workday", "--kinds", "compound",
                   "--places", JUNCTION, env=env)
    assert done.returncode == 0, done.stderr
    assert "2 places" in done.stdout and "荷塘豪庭" in done.stdout
    listed = gridbot("patrol", "plans", "--json", env=env)
    assert listed.returncode == 0 and JUNCTION in listed.stdout
    bad = gridbot("patrol", "plan", GRID, "--kinds", "volcano", env=env)
    assert bad.returncode == 1 and "volcano" in bad.stderr
    off = gridbot("patrol", "plan", GRID, "--off", env=env)
    assert off.returncode == 0 and "removed" in off.stdout
