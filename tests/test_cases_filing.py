"""bot/cases/filing.py: filing a report — where it is dispatched, what is cleaned before it
is stored, a report of the same problem nearby joining the open case, a report key filing
once. On both storage set-ups (PostgreSQL files in one autocommitted statement)."""

from __future__ import annotations

import dataclasses
from datetime import UTC

import pytest
from sqlalchemy import select

from bot.cases import MAX_MEDIA_REF, CaseDraft, ReporterRef
from bot.models import AttachedReport, Reporter
from bot.services import Services
from tests.conftest import FakeClock

GRID = "440604001030103"  # 同济社区第3网格, 祖庙街道 440604001
HERE = (23.0215, 113.1214)
KIOSK, LAMP, WATER_COVER = "C0121", "C0118", "C0101"  # grid, street, district items
sqlite_only = pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)


def _draft(item: str = KIOSK, dlat: float = 0.0, **values: object) -> CaseDraft:
    fields: dict[str, object] = {"text": "报刊亭破损", **values}
    return CaseDraft(item_code=item, grid_code=GRID, lat=HERE[0] + dlat, lon=HERE[1],
                     **fields)  # type: ignore[arg-type]


@sqlite_only
def test_small_matters_stay_in_the_grid_bigger_ones_go_up(services: Services) -> None:
    filing, catalogue = services.cases.filing, services.catalogue
    assert filing.dispatch_target(catalogue.get(KIOSK), GRID) == ("grid", f"grid:{GRID}")
    assert filing.dispatch_target(catalogue.get(LAMP), GRID) == ("street", "street:440604001")
    assert filing.dispatch_target(catalogue.get(WATER_COVER), GRID) == (
        "district", "department:佛山水业集团")
    # A district matter of a local body (a 居委会 is never above a street) goes to the
    # department named for the item, else the district default.
    gym = dataclasses.replace(catalogue.get("C0126"), level="district")
    assert filing.dispatch_target(gym, GRID) == ("district", "department:区文化广电旅游体育局")
    board = dataclasses.replace(catalogue.get("C0501"), level="district")
    assert filing.dispatch_target(board, GRID) == ("district", "department:区城市管理和综合执法局")


async def test_a_filed_case_is_dispatched_with_its_words_cleaned(services: Services) -> None:
    s = services
    long_ref = "x" * (MAX_MEDIA_REF + 1)
    with pytest.raises(ValueError, match="unknown grid"):
        await s.cases.file(CaseDraft(text="问题", item_code=KIOSK, grid_code="nowhere"),
                           ReporterRef("test", "u"))
    filing = await s.cases.file(_draft(address="同济路1号 联系 13812345678" + "很" * 300,
                                       media=["photo-1", "", long_ref], urgent=True),
                                ReporterRef("test", "u", "13812345678"))
    case = filing.case
    assert not filing.attached and not filing.replayed
    assert (case.status, case.current_level, case.assignee) == (
        "dispatched", "grid", f"grid:{GRID}")
    assert case.urgent and case.handling_due > case.response_due > case.created_at
    stored = await s.cases.get(case.number)
    assert stored is not None
    assert "13812345678" not in stored.address and len(stored.address) == 200
    assert [m.ref for m in stored.media] == ["photo-1"]  # empty and oversized refs dropped
    assert [e.to_status for e in stored.events] == ["reported", "filed", "dispatched"]


async def test_a_report_of_the_same_problem_nearby_joins_the_open_case(
        services: Services) -> None:
    s = services
    first = (await s.cases.file(_draft(), ReporterRef("test", "a"))).case
    joined = await s.cases.file(_draft(dlat=0.0005, media=["photo-2"]), ReporterRef("test", "b"))
    assert joined.attached and joined.case.number == first.number
    # Farther than the radius, another item, or duplicates off: a case of its own.
    for draft, attach in ((_draft(dlat=0.002), True), (_draft(item="C0125"), True),
                          (_draft(), False)):
        other = await s.cases.file(draft, ReporterRef("test", "c"), attach_duplicates=attach)
        assert not other.attached and other.case.number != first.number
    # The first reporter reporting again is not their own follower.
    again = await s.cases.file(_draft(), ReporterRef("test", "a"))
    assert again.attached and again.case.number == first.number
    async with s.db.session() as session:
        followers = (await session.execute(select(Reporter.external_id).join(
            AttachedReport, AttachedReport.reporter_id == Reporter.id).where(
            AttachedReport.case_id == first.id))).scalars().all()
    assert followers == ["b"]
    seen = await s.cases.get(first.number, ReporterRef("test", "b"))
    assert seen is not None and "photo-2" in [m.ref for m in seen.media]


@pytest.mark.parametrize("clocked", ["sqlite+embedded"], indirect=True)
async def test_an_old_open_case_is_no_duplicate(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    first = (await s.cases.file(_draft(), ReporterRef("test", "a"))).case
    clock.advance(hours=s.config.cases.duplicate_window_h + 1)
    later = await s.cases.file(_draft(), ReporterRef("test", "b"))
    assert not later.attached and later.case.number != first.number
    assert later.case.created_at == clock().astimezone(UTC)


async def test_a_report_key_files_once(services: Services) -> None:
    s = services
    first = await s.cases.file(_draft(report_key="test:k1"), ReporterRef("test", "a"))
    retry = await s.cases.file(_draft(report_key="test:k1", text="又发了一次"),
                               ReporterRef("test", "a"))
    assert retry.replayed and retry.case.number == first.case.number
    assert (await s.cases.filed_by("test:k1")).case.number == first.case.number  # type: ignore[union-attr]
    assert await s.cases.filed_by("test:never") is None
    # A joined report's key names the case it joined.
    joined = await s.cases.file(_draft(report_key="test:k2"), ReporterRef("test", "b"))
    assert joined.attached
    assert (await s.cases.filed_by("test:k2")).case.number == first.case.number  # type: ignore[union-attr]


@sqlite_only
async def test_a_person_keeps_one_reporter_row(services: Services) -> None:
    s = services
    now = s.cases.clock()
    async with s.db.session() as session, session.begin():
        first = await s.cases.filing.reporter_id_for(session, ReporterRef("test", "p"), now)
        again = await s.cases.filing.reporter_id_for(session, ReporterRef("test", "p"), now)
        other = await s.cases.filing.reporter_id_for(session, ReporterRef("wechat", "p"), now)
    assert first == again != other
