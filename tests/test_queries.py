"""bot/queries.py: read-only questions about cases — a grid's open cases, and whether an
action would be refused before a worker is asked for a note."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.cases import CaseDraft, ReporterRef
from bot.queries import open_cases_of_grid, refusal_before_prompt
from bot.services import Services
from bot.workflow import Status

GRID, OTHER_GRID = "440604001030103", "440604003020101"
KIOSK, LAMP = "C0121", "C0118"  # 报刊亭 is handled in the grid, 路灯 by the street
sqlite_only = pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)


async def _file(s: Services, item: str = KIOSK, grid: str = GRID) -> str:
    filing = await s.cases.file(CaseDraft(text="问题", item_code=item, grid_code=grid),
                                ReporterRef("test", "u"), attach_duplicates=False)
    return filing.case.number


@sqlite_only
async def test_a_grids_open_cases_the_nearest_deadline_first(services: Services) -> None:
    s = services
    slow = await _file(s, LAMP)  # 3 working days
    quick = await _file(s, KIOSK)  # 3 working days too, filed a moment later
    urgent = await _file(s, "C0101")  # 上水井盖: 4 hours
    done = await _file(s)
    await s.cases.transition(done, Status.REJECTED, "test")
    await _file(s, grid=OTHER_GRID)
    assert [c.number for c in await open_cases_of_grid(s.db, GRID)] == [urgent, slow, quick]
    assert [c.number for c in await open_cases_of_grid(s.db, GRID, limit=1)] == [urgent]
    assert await open_cases_of_grid(s.db, "no-such-grid") == []


@sqlite_only
async def test_a_refusal_is_known_before_the_worker_is_asked_for_a_note(
        services: Services) -> None:
    s = services
    now = datetime.now(UTC)
    mine = await s.teams.add_worker("周坚怡", "grid_worker", f"grid:{GRID}", "test", "w1", now)
    stranger = await s.teams.add_worker("外人", "grid_worker", f"grid:{OTHER_GRID}", "test",
                                        "w2", now)
    kiosk, lamp = await _file(s, KIOSK), await _file(s, LAMP)

    async def refused(number: str, worker: object, action: str) -> str | None:
        answer = await refusal_before_prompt(s.db, s.teams, number, worker, action)  # type: ignore[arg-type]
        return None if answer is None else answer.key

    assert await refused("20000101-0001", mine, "resolve") == "not_found"
    assert await refused(kiosk, stranger, "give_back") == "not_yours"
    assert await refused(kiosk, None, "give_back") == "not_yours"
    assert await refused(kiosk, mine, "give_back") is None
    assert await refused(kiosk, mine, "resolve") is None  # 即办 of a grid matter
    assert await refused(lamp, mine, "resolve") == "accept_first"  # the street's matter
    await s.cases.transition(lamp, Status.HANDLING, "test")
    assert await refused(lamp, mine, "resolve") is None  # accepted: now it may be resolved
    await s.cases.transition(kiosk, Status.REJECTED, "test")
    assert await refused(kiosk, mine, "give_back") == "moved_on"
