"""bot/cases/lifecycle.py: moving a case through the workflow — refused moves change
nothing; ratings, 回访, merges, splits and escalation each keep their rules."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases import CaseDraft, CaseNotFound, RatingRefused, ReporterRef
from bot.models import AttachedReport, Case, CaseRating, CaseTimer
from bot.services import Services
from bot.workflow import Status, TransitionError

GRID = "440604001030103"
HERE = (23.0215, 113.1214)
CLOSING = (Status.HANDLING, Status.HANDLED, Status.VERIFIED, Status.CLOSED)
FIRST, FOLLOWER = ReporterRef("test", "first"), ReporterRef("test", "follower")
sqlite_only = pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)


async def _file(s: Services, who: ReporterRef = FIRST, item: str = "C0121",
                dlat: float = 0.0, attach: bool = True) -> str:
    filing = await s.cases.file(CaseDraft(text="报刊亭破损", item_code=item, grid_code=GRID,
                                          lat=HERE[0] + dlat, lon=HERE[1],
                                          media=[f"photo-{who.external_id}"]),
                                who, attach_duplicates=attach)
    return filing.case.number


async def _close(s: Services, number: str) -> None:
    for status in CLOSING:
        await s.cases.transition(number, status, "test")


@sqlite_only
async def test_a_refused_move_changes_nothing(services: Services) -> None:
    s = services
    number = await _file(s)
    with pytest.raises(TransitionError):
        await s.cases.transition(number, Status.CLOSED, "test")
    case = await s.cases.get(number)
    assert case is not None and case.status == Status.DISPATCHED
    assert [e.to_status for e in case.events] == ["reported", "filed", "dispatched"]
    with pytest.raises(CaseNotFound):
        await s.cases.transition("20000101-0001", Status.HANDLING, "test")


@sqlite_only
async def test_only_the_first_reporter_rates_once_and_a_low_score_reopens_once(
        services: Services) -> None:
    s = services
    number = await _file(s)
    assert (await s.cases.file(CaseDraft(text="也坏了", item_code="C0121", grid_code=GRID,
                                         lat=HERE[0], lon=HERE[1]), FOLLOWER)).attached
    with pytest.raises(ValueError, match="1 to 5"):
        await s.cases.rate(number, FIRST, 6)
    with pytest.raises(RatingRefused):
        await s.cases.rate(number, FIRST, 5)  # not closed yet
    await _close(s, number)
    with pytest.raises(CaseNotFound):  # a follower's score would count the case twice
        await s.cases.rate(number, FOLLOWER, 1)
    reopened = await s.cases.rate(number, FIRST, 2, "还是坏的")
    assert reopened.status == Status.DISPATCHED and reopened.reopen_count == 1
    await _close(s, number)
    again = await s.cases.rate(number, FIRST, 1, "仍然不满意")
    assert again.status == Status.CLOSED and again.rating == 1  # reopened once, not twice
    with pytest.raises(RatingRefused):
        await s.cases.rate(number, FIRST, 5)  # this closure is rated
    async with s.db.session() as session:
        ratings = (await session.execute(select(CaseRating.closure, CaseRating.score)
                                         .order_by(CaseRating.id))).all()
    assert ratings == [(0, 2), (1, 1)]


@sqlite_only
async def test_a_callback_counts_as_the_closures_rating_once(services: Services) -> None:
    s = services
    number = await _file(s)
    with pytest.raises(ValueError):
        await s.cases.record_callback(number, "staff:李", True, 0)
    with pytest.raises(RatingRefused):
        await s.cases.record_callback(number, "staff:李", True, 5)  # open: nothing to ask
    await _close(s, number)
    await s.cases.record_callback(number, "staff:李", False)  # not reached: the trail only
    await s.cases.record_callback(number, "staff:李", True, 4, "满意")
    with pytest.raises(RatingRefused):
        await s.cases.record_callback(number, "staff:李", True, 5)
    case = await s.cases.get(number)
    assert case is not None and case.rating == 4
    assert [e.action for e in case.events][-2:] == ["callback", "callback"]


@sqlite_only
async def test_merge_moves_reports_and_photos_and_closes_the_source(services: Services) -> None:
    s = services
    target = await _file(s)
    source = await _file(s, ReporterRef("test", "second"), dlat=0.005)
    with pytest.raises(ValueError):
        await s.cases.merge(target, target, "staff:李", "同一问题")
    with pytest.raises(CaseNotFound):
        await s.cases.merge(source, "20000101-0001", "staff:李", "同一问题")
    merged = await s.cases.merge(source, target, "staff:李", "同一问题")
    assert merged.number == target
    old = await s.cases.get(source)
    assert old is not None and old.status == Status.REJECTED and old.merged_into == target
    # Its reporter follows the target now, photos and all.
    seen = await s.cases.get(target, ReporterRef("test", "second"))
    assert seen is not None and not seen.viewer_owns
    assert sorted(m.ref for m in seen.media) == ["photo-first", "photo-second"]
    with pytest.raises(TransitionError):  # a closed case is merged into nothing
        await s.cases.merge(await _file(s, dlat=0.01, attach=False), source, "staff:李", "x")


@sqlite_only
async def test_split_makes_an_attached_report_a_case_of_its_own(services: Services) -> None:
    s = services
    number = await _file(s)
    await _file(s, FOLLOWER)  # attached
    case = await s.cases.get(number)
    assert case is not None
    with pytest.raises(CaseNotFound):
        await s.cases.split(number, 99999, "staff:李", "另一个问题")
    async with s.db.session() as session:
        attached_id = (await session.execute(select(AttachedReport.id))).scalar_one()
    new = await s.cases.split(number, attached_id, "staff:李", "另一个问题")
    assert new.number != number and new.status == Status.DISPATCHED
    assert [c.number for c in await s.cases.for_reporter(FOLLOWER)] == [new.number]
    assert (await s.cases.get(number)).events[-1].action == "split"  # type: ignore[union-attr]


@sqlite_only
async def test_escalation_stops_at_the_district_and_a_moved_on_case_is_not_urged(
        services: Services) -> None:
    s = services
    number = await _file(s, item="C0101")  # 上水井盖: already a district department's

    async def escalate() -> bool:
        escalated: list[bool] = []

        async def work(session: AsyncSession, case: Case, now: datetime) -> None:
            escalated.append(await s.cases.escalate(session, case, now, "system", "超时"))

        await s.cases.locked(number, work)
        return escalated[0]

    assert await escalate() is False
    await s.cases.transition(number, Status.HANDLING, "test")
    await s.cases.transition(number, Status.HANDLED, "test")
    async with s.db.session() as session:
        timer = (await session.execute(select(CaseTimer).limit(1))).scalar_one()
    before = len((await s.cases.get(number)).events)  # type: ignore[union-attr]

    async def fire(session: AsyncSession, case: Case, now: datetime) -> None:
        await s.cases.fire_timer(session, case, timer, now)

    await s.cases.locked(number, fire)
    assert len((await s.cases.get(number)).events) == before  # type: ignore[union-attr]
