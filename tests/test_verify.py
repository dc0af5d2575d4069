"""bot/verify.py: 核实 — a patrol report the district wants looked at again waits as a
reported case until a checker passes it (filed and dispatched) or fails it (rejected, the
worker told why); left waiting, the verifiers are urged through a case timer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.actions import ActionRefused
from bot.cases import CaseDraft, ReporterRef
from bot.config import PatrolConfig
from bot.models import CaseTimer, OutboxMessage
from bot.services import Services
from bot.texts import t
from bot.verify import TIMER_KIND, PatrolVerification
from bot.workflow import Status
from tests.conftest import FakeClock

GRID = "440604001030103"  # 同济社区第3网格; its chat: telegram:-1001000000023
KIOSK = "C0121"  # 报刊亭: 公用设施, handled in the grid


def _verification(s: Services, **config: object) -> PatrolVerification:
    return PatrolVerification(s.cases, s.teams, PatrolConfig(**config))


@pytest.mark.parametrize("clocked", ["sqlite+embedded"], indirect=True)
def test_which_reports_wait_is_config(clocked: Services) -> None:
    s = clocked
    assert not _verification(s).needed(KIOSK)
    assert _verification(s, verify_levels=["grid"]).needed(KIOSK)
    assert not _verification(s, verify_levels=["district"]).needed(KIOSK)
    assert _verification(s, verify_items=[KIOSK]).needed(KIOSK)
    assert _verification(s, verify_items=["公用设施"]).needed(KIOSK)  # a big class
    assert not _verification(s, verify_items=["公用设施"]).needed("C0201")  # 道路交通
    assert not _verification(s, verify_levels=["grid"]).needed("Z9999")  # not an item


async def _setup(s: Services) -> tuple[PatrolVerification, str]:
    now = datetime.now(UTC)
    for name, role, user in (("周坚怡", "grid_worker", "w1"), ("谭峰宇", "grid_leader", "lead"),
                             ("叶明贞", "grid_worker", "w2")):
        await s.teams.add_worker(name, role, f"grid:{GRID}", "test", user, now)
    verification = _verification(s, verify_items=[KIOSK])
    held = await verification.hold(
        CaseDraft(text="报刊亭倾斜", item_code=KIOSK, grid_code=GRID, report_key="test:r1",
                  source="patrol", media=["photo-before"]), ReporterRef("test", "w1"))
    return verification, held.case.number


async def _rows(s: Services, model: type) -> list:
    async with s.db.session() as session:
        return list((await session.execute(select(model).order_by(model.id))).scalars())


@pytest.mark.parametrize("clocked", ["sqlite+embedded"], indirect=True)
async def test_held_waiting_and_passed(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    verification, number = await _setup(s)
    case = await s.cases.get(number)
    assert case is not None and case.status == Status.REPORTED and case.handling_due is None
    assert case.assignee == "street:440604001" and [m.ref for m in case.media] == [
        "photo-before"]
    [card] = await _rows(s, OutboxMessage)
    assert (card.channel, card.recipient) == ("telegram", "-1001000000023")  # the grid's chat
    assert card.text == verification.card_text(case)
    [timer] = await _rows(s, CaseTimer)
    assert timer.kind == TIMER_KIND and timer.done_at is None
    # The same report sent again is the same case.
    again = await verification.hold(CaseDraft(text="报刊亭倾斜", item_code=KIOSK, grid_code=GRID,
                                              report_key="test:r1", source="patrol"),
                                    ReporterRef("test", "w1"))
    assert again.replayed and again.case.number == number
    assert [c.number for c in await verification.waiting()] == [number]
    assert await verification.waiting(["440604003020101"]) == []
    clock.advance(hours=1)
    leader = await s.teams.worker("test", "lead")
    passed = await verification.confirm(number, leader)
    assert passed.status == Status.DISPATCHED
    assert passed.handling_due is not None and passed.handling_due > clock()  # from now
    assert await verification.waiting() == []
    [timer, *others] = await _rows(s, CaseTimer)
    assert timer.outcome == "cancelled" and {o.kind for o in others} >= {"escalate"}


@pytest.mark.parametrize("clocked", ["sqlite+embedded"], indirect=True)
async def test_who_may_decide_and_a_failed_check_needs_a_reason(clocked: Services) -> None:
    s = clocked
    verification, number = await _setup(s)

    async def refused(user: str | None, reason: str | None = None) -> str:
        worker = await s.teams.worker("test", user) if user else None
        with pytest.raises(ActionRefused) as raised:
            if reason is None:
                await verification.confirm(number, worker)
            else:
                await verification.refuse(number, worker, reason)
        return raised.value.key

    assert await refused(None) == "not_yours"
    assert await refused("w2") == "verifiers_only"  # a worker does not check a colleague
    assert await refused("lead", "  ") == "reason_needed"
    with pytest.raises(ActionRefused) as raised:
        await verification.confirm("20000101-0001", await s.teams.worker("test", "lead"))
    assert raised.value.key == "not_found"
    # A leader who reported it themselves does not pass their own report.
    await s.teams.add_worker("周坚怡", "grid_leader", f"grid:{GRID}", "test", "w1",
                             datetime.now(UTC))
    assert await refused("w1") == "not_own_report"
    failed = await verification.refuse(number, await s.teams.worker("test", "lead"),
                                       "不是报刊亭，是快递柜")
    assert failed.status == Status.REJECTED
    told = [r for r in await _rows(s, OutboxMessage) if r.payload["kind"] == "citizen"]
    assert [r.text for r in told] == [t("verify.refused_worker", number=number,
                                        reason="不是报刊亭，是快递柜",
                                        status=t("status.rejected"))]


@pytest.mark.parametrize("clocked", ["sqlite+embedded"], indirect=True)
async def test_left_waiting_the_verifiers_are_urged_again_and_again(
        clocked: Services, clock: FakeClock) -> None:
    s = clocked
    verification, number = await _setup(s)
    [timer] = await _rows(s, CaseTimer)
    clock.now = timer.due_at
    assert await s.timers.run_once() == 1
    urges = [r for r in await _rows(s, OutboxMessage) if r.payload["kind"] == "notice"]
    assert len(urges) == 1 and number in urges[0].text
    timers = await _rows(s, CaseTimer)
    assert len(timers) == 2 and timers[1].done_at is None and timers[1].due_at > clock()
    # Passed meanwhile: a timer that fires late does nothing.
    await verification.confirm(number, await s.teams.worker("test", "lead"))
    case = await s.cases.get(number)
    async with s.db.session() as session, session.begin():
        await verification.fire_timer(session, case, timers[1], clock())
    assert len([r for r in await _rows(s, OutboxMessage)
                if r.payload["kind"] == "notice"]) == 1
