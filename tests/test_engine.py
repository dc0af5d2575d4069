"""Deadlines, reminders, two-level escalation and outbox delivery, with a controlled clock."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from bot.cases import CaseDraft, ReporterRef
from bot.catalogue import TimeLimit
from bot.models import Case, CaseEvent, CaseTimer, OutboxMessage
from bot.outbox import Notice, OutboxWorker, PermanentDeliveryError, updates_for
from bot.services import Services
from bot.timers import TimerRunner
from bot.workflow import Status
from tests.conftest import FakeClock

DEMO_GRID = "440604001030103"  # 同济社区第3网格, 祖庙街道


def _item(services: Services, level: str, urgent: bool = False) -> str:
    return next(i.code for i in services.catalogue.items
                if i.level == level and i.urgent == urgent and i.handling.unit in ("wd", "wh"))


async def _file(services: Services, code: str, who: str = "citizen-1", spot: int = 0) -> Case:
    """File in the demo grid; a different `spot` is ~1 km away, so it is not a duplicate."""
    filing = await services.cases.file(
        CaseDraft(text="测试案件", item_code=code, grid_code=DEMO_GRID,
                  lat=23.0215 + spot * 0.01, lon=113.1214),
        ReporterRef("http", who),
    )
    return filing.case


async def _pending(services: Services, case: Case) -> list[CaseTimer]:
    async with services.db.session() as session:
        return list((await session.execute(select(CaseTimer).where(
            CaseTimer.case_id == case.id, CaseTimer.done_at.is_(None))
            .order_by(CaseTimer.due_at, CaseTimer.id))).scalars())


async def _outbox(services: Services) -> list[OutboxMessage]:
    async with services.db.session() as session:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id)))
                    .scalars())


async def test_grid_case_is_reminded_then_escalated_to_street_then_district(
    clocked: Services, clock: FakeClock
) -> None:
    s = clocked
    case = await _file(s, _item(s, "grid"))
    assert case.current_level == "grid" and case.assignee == f"grid:{DEMO_GRID}"
    first_due = case.handling_due
    runner = TimerRunner(s.cases)
    assert await runner.run_once() == 0  # nothing due yet

    # The response limit (接单), two reminders in working hours, then the escalation.
    timers = await _pending(s, case)
    assert [t.kind for t in timers] == ["respond", "remind", "remind_final", "escalate"]
    assert timers[0].due_at == case.response_due and timers[-1].due_at == first_due
    assert all(s.cases.calendar.is_working_time(t.due_at) for t in timers[1:3])
    for timer in timers[:3]:
        clock.now = timer.due_at
        assert await runner.run_once() == 1
    group = [m.text for m in await _outbox(s) if m.recipient.startswith("-100")]
    assert sum("【接单督办】" in m for m in group) == 1  # not accepted in time
    assert sum("【办理提醒】" in m for m in group) == 1  # half way
    assert sum("【临期提醒】" in m for m in group) == 1  # the deadline is close

    clock.now = first_due
    assert await runner.run_once() == 1  # escalation to the street
    case = await s.cases.get(case.number)
    assert case.status == Status.DISPATCHED and case.current_level == "street"
    assert case.assignee == "street:440604001" and case.handling_due > first_due
    assert [e.to_status for e in case.events if e.to_status][-2:] == ["escalated", "dispatched"]
    texts = [m.text for m in await _outbox(s)]
    assert any("已上报上一级" in t for t in texts)  # 督办 notice to the grid below
    assert any("已上报上级" in t for t in texts)  # the reporter hears it

    clock.now = case.handling_due
    fired = 0
    while n := await runner.run_once():  # this level's timers, then its escalation
        fired += n
    case = await s.cases.get(case.number)
    assert fired == 4 and case.current_level == "district"
    assert case.assignee.startswith("department:")

    clock.now = case.handling_due
    while await runner.run_once():
        pass
    case = await s.cases.get(case.number)
    assert case.current_level == "district" and case.status == Status.DISPATCHED
    urged = [e.action for e in case.events].count("urge")  # (the response limits' too)
    # Overdue at the top: urged again every working day until handled.
    again = [t for t in await _pending(s, case) if t.kind == "escalate"]
    assert len(again) == 1 and again[0].due_at == s.cases.calendar.add(
        case.handling_due, TimeLimit(1, "wd"))
    clock.now = again[0].due_at
    assert await runner.run_once() == 1
    case = await s.cases.get(case.number)
    assert [e.action for e in case.events].count("urge") == urged + 1


async def test_a_handled_case_is_not_escalated(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    case = await _file(s, _item(s, "grid"))
    await s.cases.transition(case.number, Status.HANDLING, "worker:1")
    await s.cases.transition(case.number, Status.HANDLED, "worker:1", "已清理")
    clock.now = case.handling_due
    await TimerRunner(s.cases).run_once()
    case = await s.cases.get(case.number)
    assert case.status == Status.HANDLED
    assert "escalated" not in [e.to_status for e in case.events]


async def test_two_runners_never_fire_a_timer_twice(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    cases = [await _file(s, _item(s, "grid"), who=f"c{i}", spot=i) for i in range(12)]
    clock.now = max(c.handling_due for c in cases)
    a, b = TimerRunner(s.cases), TimerRunner(s.cases)
    while sum(await asyncio.gather(a.run_once(limit=5), b.run_once(limit=5))):
        pass
    async with s.db.session() as session:
        events = (await session.execute(select(CaseEvent))).scalars().all()
    escalated = Counter(e.case_id for e in events if e.to_status == "escalated")
    # Each case escalated once (grid → street); the street deadline is later, not yet due.
    assert sorted(escalated.values()) == [1] * len(cases)
    reminders = Counter(e.case_id for e in events if e.action == "remind")
    assert set(reminders.values()) == {2}


async def test_outbox_retries_with_backoff_and_delivers_once(
    clocked: Services, clock: FakeClock
) -> None:
    s = clocked
    case = await _file(s, _item(s, "grid"))
    await s.cases.transition(case.number, Status.HANDLING, "worker:1")
    calls: list[str] = []

    async def flaky(notice: Notice) -> None:  # every first attempt times out
        calls.append(notice.idempotency_key)
        if calls.count(notice.idempotency_key) == 1:
            raise TimeoutError("channel timed out")

    worker = OutboxWorker(s.db, {"http": flaky, "telegram": flaky}, clock, backoff_s=10)
    rows = len(await _outbox(s))  # dispatch card, handling card, reporter update
    assert rows == 3
    assert await worker.run_once() == 0
    assert await worker.undelivered() == rows
    assert await worker.run_once() == 0  # backoff: not yet due again
    clock.advance(seconds=11)
    assert await worker.run_once() == rows
    assert await worker.undelivered() == 0
    delivered = Counter(calls)
    assert len(delivered) == rows and set(delivered.values()) == {2}
    reporter = next(m for m in await _outbox(s) if m.recipient.startswith("reporter:"))
    assert reporter.attempts == 2 and reporter.status == "delivered"


async def test_one_persons_updates_arrive_in_order_even_when_the_first_is_slow(
    clocked: Services, clock: FakeClock
) -> None:
    s = clocked
    case = await _file(s, _item(s, "grid"))
    await s.cases.transition(case.number, Status.HANDLING, "worker:1")
    await s.cases.transition(case.number, Status.HANDLED, "worker:1")
    arrived: list[tuple[str, int]] = []

    async def older_is_slower(notice: Notice) -> None:
        # Sent all at once, the newest of a recipient's notices would arrive first.
        await asyncio.sleep(0.3 / notice.id)
        arrived.append((notice.recipient, notice.id))

    worker = OutboxWorker(s.db, {"http": older_is_slower, "telegram": older_is_slower}, clock)
    rows = await _outbox(s)
    assert await worker.run_once() == len(rows)
    per_recipient = Counter(r for r, _ in arrived)
    assert max(per_recipient.values()) >= 2  # the team's cards, the reporter's updates
    for recipient in per_recipient:
        ids = [i for r, i in arrived if r == recipient]
        assert ids == sorted(ids), recipient


async def test_outbox_survives_a_crash_mid_delivery_and_a_redis_flush(
    clocked: Services, clock: FakeClock
) -> None:
    s = clocked
    await _file(s, _item(s, "grid"))
    received: list[str] = []

    async def telegram(notice: Notice) -> None:
        received.append(notice.idempotency_key)

    crashed = OutboxWorker(s.db, {"telegram": telegram}, clock, lease_s=60)
    claimed = await crashed.claim()  # … and the process dies before sending
    assert len(claimed) == 1
    await s.redis.flushdb()  # nothing about delivery lives in Redis
    restarted = OutboxWorker(s.db, {"telegram": telegram}, clock, lease_s=60)
    assert await restarted.run_once() == 0  # the lease still holds
    clock.advance(seconds=61)
    assert await restarted.run_once() == 1
    assert received == [claimed[0].idempotency_key]
    assert await restarted.undelivered() == 0


async def test_a_permanently_failing_channel_never_blocks_the_case(
    clocked: Services, clock: FakeClock
) -> None:
    s = clocked
    case = await _file(s, _item(s, "grid"))

    async def blocked(notice: Notice) -> None:
        raise PermanentDeliveryError("bot was blocked by the user")

    await OutboxWorker(s.db, {"telegram": blocked}, clock).run_once()
    moved = await s.cases.transition(case.number, Status.HANDLING, "worker:1")
    assert moved.status == Status.HANDLING
    team = [m.status for m in await _outbox(s) if m.channel == "telegram"]
    assert team == ["failed", "pending"]  # the next card is still tried


async def test_reporters_poll_their_updates_and_only_theirs(clocked: Services) -> None:
    s = clocked
    case = await _file(s, _item(s, "grid"), who="web-9")
    await _file(s, _item(s, "grid"), who="web-10", spot=1)
    await s.cases.transition(case.number, Status.HANDLING, "worker:1")
    updates = await updates_for(s.db, "http", "web-9")
    assert len(updates) == 1 and updates[0]["case"] == case.number
    assert "处置中" in updates[0]["text"]
    assert await updates_for(s.db, "http", "web-9", after=updates[0]["id"]) == []
    assert await updates_for(s.db, "http", "web-10") == []
    assert await updates_for(s.db, "http", "nobody") == []


async def test_urgent_items_count_clock_hours(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    clock.now = clock.now.replace(hour=14)  # 22:00 in Foshan, outside office hours
    code = next(i.code for i in s.catalogue.items if i.urgent and i.handling.unit == "h")
    case = await _file(s, code)
    item = s.catalogue.get(code)
    # Office hours do not apply: 4h at 22:00 is due at 02:00.
    assert case.handling_due - case.created_at == timedelta(hours=item.handling.amount)
    async with s.db.session() as session:
        stored = await session.get(Case, case.id)
    assert stored.urgent


async def test_a_nearby_report_of_the_same_item_joins_the_open_case(
    clocked: Services, clock: FakeClock
) -> None:
    s = clocked
    code = _item(s, "grid")
    first = await _file(s, code, who="p1")
    near = await s.cases.file(
        CaseDraft(text="同一个问题又看到了", item_code=code, grid_code=DEMO_GRID,
                  lat=23.0215 + 0.0005, lon=113.1214, media=["photo-2"]),  # ~55 m away
        ReporterRef("telegram", "p2"))
    assert near.attached and near.case.number == first.number
    other_item = next(i.code for i in s.catalogue.items if i.code != code and i.level == "grid")
    assert (await _file(s, other_item, who="p3")).number != first.number
    far = await _file(s, code, who="p4", spot=1)  # ~1.1 km away
    assert far.number != first.number
    clock.advance(hours=80)  # past the 72 h window
    later = await _file(s, code, who="p5")
    assert later.number != first.number

    # Both reporters follow the case and see it in their lists.
    assert [c.number for c in await s.cases.for_reporter(ReporterRef("telegram", "p2"))] == [
        first.number]
    assert await s.cases.get(first.number, ReporterRef("telegram", "p2")) is not None
    await s.cases.transition(first.number, Status.HANDLING, "worker:1")
    told = [m for m in await _outbox(s) if m.text.find(first.number) >= 0
            and m.recipient.startswith("reporter:") and "处置中" in m.text]
    assert {m.channel for m in told} == {"http", "telegram"}
    case = await s.cases.get(first.number)
    assert [m.ref for m in case.media] == ["photo-2"]
    assert "attach" in [e.action for e in case.events]


async def test_background_runner_delivers_and_stops(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    await _file(s, _item(s, "grid"))
    delivered = asyncio.Event()

    async def telegram(notice: Notice) -> None:
        delivered.set()

    s.outbox.register("telegram", telegram)
    stop = asyncio.Event()
    runner = asyncio.create_task(s.outbox.run_forever(stop, interval_s=0.05))
    await asyncio.wait_for(delivered.wait(), 10)
    stop.set()
    await asyncio.wait_for(runner, 10)
    assert await s.outbox.undelivered() == 0


async def test_escalation_above_a_street_reaches_a_district_department(
        clocked: Services, clock: FakeClock) -> None:
    """G0303 (noise) is a 社区居委会 matter in the grid: above the street it goes to the
    department the organisation names, never to a residents' committee."""
    s = clocked
    assert s.catalogue.get("G0303").department == "社区居委会"
    case = await _file(s, "G0303")
    runner = TimerRunner(s.cases)
    for level in ("street", "district"):
        clock.now = case.handling_due
        while await runner.run_once():
            pass
        case = await s.cases.get(case.number)
        assert case.current_level == level
    assert case.assignee == "department:佛山市公安局禅城分局"
    assert case.department == "佛山市公安局禅城分局"  # its staff see the case in the console
    # An item of a real department keeps it.
    assert s.cases.config.district_department("C0101", "区城市管理和综合执法局") == \
        "区城市管理和综合执法局"
    assert s.cases.config.district_department("C0501", "社区居委会") == "区城市管理和综合执法局"
