"""bot/nearby.py: open cases near a point (「是这个吗？」) and following one instead of
filing a new case."""

from __future__ import annotations

import math

import pytest

from bot.cases import CaseDraft, CaseNotFound, ReporterRef
from bot.nearby import NotFollowable, follow, open_cases_near
from bot.services import Services
from bot.workflow import Status

GRID = "440604001030103"
HERE = (23.0215, 113.1214)
KIOSK, VENDING = "C0121", "C0125"
sqlite_only = pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)


async def _file(s: Services, dlat: float = 0.0, item: str = KIOSK, who: str = "a") -> str:
    """A case `dlat` degrees north of HERE (0.001° ≈ 111 m)."""
    filing = await s.cases.file(CaseDraft(text="报刊亭破损", item_code=item, grid_code=GRID,
                                          lat=HERE[0] + dlat, lon=HERE[1]),
                                ReporterRef("test", who), attach_duplicates=False)
    return filing.case.number


async def test_open_cases_of_the_item_within_the_radius_nearest_first(
        services: Services) -> None:
    s = services
    far = await _file(s, 0.002)  # ~220 m
    near = await _file(s, 0.0005)  # ~55 m
    nearest = await _file(s, 0.0)
    await _file(s, 0.0, item=VENDING)  # another item
    closed = await _file(s, 0.0001)
    await s.cases.transition(closed, Status.REJECTED, "test")
    found = await open_cases_near(s.cases, KIOSK, *HERE, radius_m=150)
    assert [n.case.number for n in found] == [nearest, near]
    assert found[0].distance_m < 1 and 50 < found[1].distance_m < 60
    wider = await open_cases_near(s.cases, KIOSK, *HERE, radius_m=300, limit=2)
    assert [n.case.number for n in wider] == [nearest, near]  # the limit keeps the nearest
    assert far in [n.case.number for n in await open_cases_near(s.cases, KIOSK, *HERE, 300)]
    assert await open_cases_near(s.cases, KIOSK, *HERE, radius_m=0) == []


@sqlite_only
async def test_following_joins_the_report_to_the_open_case(services: Services) -> None:
    s = services
    number = await _file(s)
    me = ReporterRef("test", "me")
    draft = CaseDraft(text="这里的报刊亭也坏了", item_code=KIOSK, grid_code=GRID,
                      lat=HERE[0], lon=HERE[1], media=["photo-1"])
    case = await follow(s.cases, number, draft, me)
    assert case.number == number and case.viewer_owns is False
    # Theirs to follow from now on: they see it, as a follower (no first report's words).
    seen = await s.cases.get(number, me)
    assert seen is not None and seen.viewer_owns is False
    assert "photo-1" in [m.ref for m in seen.media]
    assert [e.action for e in seen.events][-1] == "attach"


@sqlite_only
async def test_a_case_that_moved_on_or_is_of_another_item_is_not_followed(
        services: Services) -> None:
    s = services
    me = ReporterRef("test", "me")
    draft = CaseDraft(text="报刊亭坏了", item_code=KIOSK, grid_code=GRID)
    other = await _file(s, item=VENDING)
    with pytest.raises(NotFollowable):
        await follow(s.cases, other, draft, me)
    rejected = await _file(s)
    await s.cases.transition(rejected, Status.REJECTED, "test")
    with pytest.raises(NotFollowable):
        await follow(s.cases, rejected, draft, me)
    with pytest.raises(CaseNotFound):
        await follow(s.cases, "20000101-0001", draft, me)
    assert await s.cases.for_reporter(me) == []  # nothing was joined


@sqlite_only
async def test_a_case_just_inside_the_radius_due_north_is_found(services: Services) -> None:
    s = services
    dlat = math.degrees(149.9 / 6_371_000)  # 149.9 m north: the old box ended at 149.8
    edge = await _file(s, dlat)
    [found] = await open_cases_near(s.cases, KIOSK, *HERE, radius_m=150)
    assert found.case.number == edge and 149.8 < found.distance_m < 150
