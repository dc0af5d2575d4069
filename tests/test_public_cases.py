"""bot/public_cases.py: which cases the public map shows — open ones and those closed in
the last days, never a rejected or merged one — and its filters."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bot.cases import CaseDraft, ReporterRef
from bot.models import Case
from bot.public_cases import RECENT_DAYS, PublicFilter, is_public, public_cases
from bot.services import Services
from bot.workflow import Status
from tests.conftest import FakeClock

GRID, OTHER_GRID = "440604001030103", "440604003020101"
CLOSING = (Status.HANDLING, Status.HANDLED, Status.VERIFIED, Status.CLOSED)
NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(("args", "wanted"), [
    (("open", "公用设施", "G1"), PublicFilter("open", "公用设施", "G1")),
    (("everything", "  公用设施 ", " G1 "), PublicFilter("all", "公用设施", "G1")),
    (("closed", "x" * 100, "g" * 100), PublicFilter("closed", "x" * 64, "g" * 32)),
])
def test_query_parameters_never_fail_and_are_trimmed(args: tuple[str, str, str],
                                                     wanted: PublicFilter) -> None:
    assert PublicFilter.read(*args) == wanted


@pytest.mark.parametrize(("values", "shown"), [
    ({"status": Status.DISPATCHED}, True),
    ({"status": Status.REPORTED}, True),
    ({"status": Status.REJECTED}, False),
    ({"status": Status.DISPATCHED, "merged_into": "20261101-0001"}, False),
    ({"status": Status.CLOSED, "closed_at": NOW - timedelta(days=RECENT_DAYS - 1)}, True),
    ({"status": Status.CLOSED, "closed_at": NOW - timedelta(days=RECENT_DAYS + 1)}, False),
    ({"status": Status.CLOSED, "closed_at": None}, False),
])
def test_one_case_is_public_by_the_same_rule(values: dict[str, object], shown: bool) -> None:
    assert is_public(Case(**values), NOW) is shown


async def _file(s: Services, grid: str, item: str = "C0121") -> str:
    filing = await s.cases.file(CaseDraft(text="问题", item_code=item, grid_code=grid),
                                ReporterRef("test", "u"), attach_duplicates=False)
    return filing.case.number


@pytest.mark.parametrize("clocked", ["sqlite+embedded"], indirect=True)
async def test_the_list_the_counts_per_grid_and_the_classes(clocked: Services,
                                                             clock: FakeClock) -> None:
    s = clocked
    old_closed = await _file(s, GRID)
    for status in CLOSING:
        await s.cases.transition(old_closed, status, "test")
    clock.advance(days=RECENT_DAYS + 1)
    recent_closed = await _file(s, GRID)
    for status in CLOSING:
        await s.cases.transition(recent_closed, status, "test")
    open_here = await _file(s, GRID)
    open_there = await _file(s, OTHER_GRID, item="C0201")  # 停车场: 道路交通
    rejected = await _file(s, GRID)
    await s.cases.transition(rejected, Status.REJECTED, "test")
    merged, into = await _file(s, GRID), await _file(s, GRID)
    await s.cases.merge(merged, into, "staff:test", "同一问题")

    def numbers(cases: list[Case]) -> list[str]:
        return [c.number for c in cases]

    cases, per_grid, classes = await public_cases(s.db, clock(), PublicFilter())
    assert numbers(cases) == [into, open_there, open_here, recent_closed]  # newest first
    assert per_grid == Counter({GRID: 3, OTHER_GRID: 1})
    assert classes == ["公用设施", "道路交通"]
    cases, per_grid, _ = await public_cases(s.db, clock(), PublicFilter("closed"))
    assert numbers(cases) == [recent_closed] and per_grid == Counter({GRID: 1})
    cases, _, _ = await public_cases(s.db, clock(), PublicFilter("open"))
    assert numbers(cases) == [into, open_there, open_here]
    # A grid narrows the list, not the map's counts; a class narrows both.
    cases, per_grid, _ = await public_cases(s.db, clock(), PublicFilter("all", "", OTHER_GRID))
    assert numbers(cases) == [open_there] and per_grid == Counter({GRID: 3, OTHER_GRID: 1})
    cases, per_grid, classes = await public_cases(s.db, clock(), PublicFilter("all", "道路交通"))
    assert numbers(cases) == [open_there] and per_grid == Counter({OTHER_GRID: 1})
    assert classes == ["公用设施", "道路交通"]  # the filter's choices stay all there are
    cases, _, _ = await public_cases(s.db, clock(), PublicFilter(), limit=2)
    assert numbers(cases) == [into, open_there]
