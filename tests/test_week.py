"""One real working week through the timers: a Friday-evening filing, a 调休 Sunday, the
Mid-Autumn and National Day holidays and a 调休 Saturday (China's 2026 calendar, from
chinese-calendar). Every reminder, 督办 and escalation is checked for its time and its
recipient, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.cases import CaseDraft, ReporterRef
from bot.models import Case, CaseTimer, OutboxMessage
from bot.services import Services
from bot.timers import TimerRunner
from bot.workflow import Status
from tests.conftest import FakeClock

TZ = ZoneInfo("Asia/Shanghai")
GRID = "440604001030103"  # 同济社区第3网格: its team's group is telegram:-1001000000023
GROUP = ("telegram", "-1001000000023")
STREET = ("console", "street:440604001")  # 祖庙街道 has no chat bound: its console inbox
DISTRICT = ("console", "department:区城市管理和综合执法局")
ITEM = "C0121"  # 报刊亭: a grid matter, respond within 1 working hour, handle within 3 days


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


# (timer kind, when it is due, the level it was set at, who is told, words they read)
WEEK = [
    # Filed Friday 2026-09-18 19:00; Saturday is off, Sunday 09-20 a 调休 working day.
    ("respond", "2026-09-20 09:30", "grid", GROUP, "【接单督办】"),
    ("remind", "2026-09-21 12:00", "grid", GROUP, "【办理提醒】"),
    ("remind_final", "2026-09-22 11:18", "grid", GROUP, "【临期提醒】"),
    ("escalate", "2026-09-22 17:30", "grid", GROUP, "已上报上一级"),
    # The street's three days run into the Mid-Autumn holiday (09-25..27).
    ("respond", "2026-09-23 09:30", "street", STREET, "【接单督办】"),
    ("remind", "2026-09-24 12:00", "street", STREET, "【办理提醒】"),
    ("remind_final", "2026-09-28 11:18", "street", STREET, "【临期提醒】"),
    ("escalate", "2026-09-28 17:30", "street", STREET, "已上报上一级"),
    # The district's run into National Day (10-01..07); then 督办 every working day,
    # the 调休 Saturday 10-10 included.
    ("respond", "2026-09-29 09:30", "district", DISTRICT, "【接单督办】"),
    ("remind", "2026-09-30 12:00", "district", DISTRICT, "【办理提醒】"),
    ("remind_final", "2026-10-08 11:18", "district", DISTRICT, "【临期提醒】"),
    ("escalate", "2026-10-08 17:30", "district", DISTRICT, "【超时督办】"),
    ("escalate", "2026-10-09 17:30", "district", DISTRICT, "【超时督办】"),
    ("escalate", "2026-10-10 17:30", "district", DISTRICT, "【超时督办】"),
]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(at("2026-09-18 19:00"))


async def _next_timer(s: Services) -> CaseTimer:
    async with s.db.session() as session:
        return (await session.execute(
            select(CaseTimer).where(CaseTimer.done_at.is_(None))
            .order_by(CaseTimer.due_at, CaseTimer.id).limit(1))).scalar_one()


async def _outbox_after(s: Services, last_id: int) -> list[OutboxMessage]:
    async with s.db.session() as session:
        return list((await session.execute(
            select(OutboxMessage).where(OutboxMessage.id > last_id)
            .order_by(OutboxMessage.id))).scalars())


async def test_a_working_week_of_reminders_urging_and_escalation(
        clocked: Services, clock: FakeClock) -> None:
    s = clocked
    filing = await s.cases.file(
        CaseDraft(text="报刊亭倒了挡住人行道", item_code=ITEM, grid_code=GRID, lat=23.0215,
                  lon=113.1214), ReporterRef("telegram", "week-reporter"))
    case = filing.case
    assert (case.response_due, case.handling_due) == (at("2026-09-20 09:30"),
                                                      at("2026-09-22 17:30"))
    runner = TimerRunner(s.cases)
    seen = max((m.id for m in await _outbox_after(s, 0)), default=0)
    for kind, due, level, recipient, words in WEEK:
        timer = await _next_timer(s)
        assert (timer.kind, timer.due_at, timer.level) == (kind, at(due), level), due
        clock.now = timer.due_at
        assert await runner.run_once() == 1
        sent = await _outbox_after(s, seen)
        seen = max((m.id for m in sent), default=seen)
        told = [m for m in sent if m.payload.get("kind") == "notice"]
        assert [(m.channel, m.recipient) for m in told] == [recipient], (due, told)
        assert words in told[0].text and case.number in told[0].text
        if kind == "escalate" and level != "district":
            # The reporter hears that it went up; the team's card shows it.
            reporters = [m for m in sent if m.recipient.startswith("reporter:")]
            assert reporters and "已上报上级" in reporters[0].text
    async with s.db.session() as session:
        final = (await session.execute(select(Case).where(Case.id == case.id))).scalar_one()
    assert final.status == Status.DISPATCHED and final.current_level == "district"
    assert final.assignee == "department:区城市管理和综合执法局"
    # Nothing fires on the Sunday after the 调休 Saturday: the next 督办 is Monday's.
    assert (await _next_timer(s)).due_at == at("2026-10-12 17:30")
