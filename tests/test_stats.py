"""Figures on a known set of cases, and a small simulation through the real pipeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.cases import CaseDraft, RatingRefused, ReporterRef
from bot.models import CaseRating
from bot.services import Services
from bot.stats import case_stats
from bot.timers import TimerRunner
from shell.ops.simulation import run_simulation, synthetic_city
from tests.conftest import FakeClock

GRID = "440604001030103"


async def test_stats_on_a_known_set_of_cases(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    start = clock()
    numbers = []
    for spot in range(4):
        filing = await s.cases.file(
            CaseDraft(text="测试", item_code=code, grid_code=GRID, lat=23.0 + spot * 0.01,
                      lon=113.1), ReporterRef("http", f"r{spot}"))
        numbers.append(filing.case.number)
    a, b, c, _d = numbers
    add = s.teams.add_worker
    local = await add("甲", "grid_worker", f"grid:{GRID}", "t", "1", clock())
    leader = await add("长", "grid_leader", f"grid:{GRID}", "t", "2", clock())
    await s.actions.resolve(a, local, "即办")  # on the spot
    await s.actions.verify(a, leader, fixed=True)
    await s.cases.rate(a, ReporterRef("http", "r0"), 5)
    await s.actions.accept(b, local)
    await s.actions.resolve(b, local, "办好了")
    await s.actions.verify(b, leader, fixed=True)
    await s.cases.rate(b, ReporterRef("http", "r1"), 3)
    await s.actions.accept(c, local)
    clock.now = (await s.cases.get(c)).handling_due
    while await TimerRunner(s.cases).run_once():
        pass
    figures = await case_stats(s.db, start, clock() + timedelta(days=1))
    assert figures["cases_filed"] == 4
    assert figures["handled_on_the_spot"] == 1 and figures["on_the_spot_share"] == 0.25
    assert figures["closed"] == 2 and figures["closure_rate"] == 0.5
    assert figures["on_time_rate"] == 1.0
    assert figures["escalated"] == 2  # c (accepted, then late) and d (never taken)
    assert figures["solved_at"] == {"grid": 1.0, "street": 0.0, "district": 0.0}
    assert figures["rated"] == 2 and figures["satisfaction_rate"] == 0.5
    by_level = await case_stats(s.db, start, clock() + timedelta(days=1), by="level")
    assert by_level["groups"]["street"]["cases_filed"] == 2
    with pytest.raises(ValueError, match="--by"):
        await case_stats(s.db, start, clock(), by="colour")


async def test_an_unhappy_first_rating_stays_counted_after_the_reopen(
        clocked: Services, clock: FakeClock) -> None:
    s = clocked
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    start = clock()
    number = (await s.cases.file(CaseDraft(text="测试", item_code=code, grid_code=GRID,
                                           lat=23.0, lon=113.1),
                                 ReporterRef("http", "unhappy"))).case.number
    worker = await s.teams.add_worker("甲", "grid_worker", f"grid:{GRID}", "t", "1", clock())
    leader = await s.teams.add_worker("长", "grid_leader", f"grid:{GRID}", "t", "2", clock())
    for score in (2, 5):  # 2 reopens the case; after the second closure it is rated 5
        await s.actions.accept(number, worker)
        await s.actions.resolve(number, worker, "处理好了")
        await s.actions.verify(number, leader, fixed=True)
        await s.cases.rate(number, ReporterRef("http", "unhappy"), score)
    async with s.db.session() as session:
        kept = (await session.execute(select(CaseRating.closure, CaseRating.score,
                                             CaseRating.source)
                                      .order_by(CaseRating.id))).all()
    assert [tuple(r) for r in kept] == [(0, 2, "chat"), (1, 5, "chat")]
    figures = await case_stats(s.db, start, clock() + timedelta(days=1))
    assert figures["rated"] == 2 and figures["satisfaction_rate"] == 0.5
    assert "first rating of each closure" in figures["satisfaction_counts"]


def test_synthetic_city_tiles_its_parents() -> None:
    areas = synthetic_city(100)
    grids = [a for a in areas if a.level == "grid"]
    assert len(grids) == 100
    by_code = {a.code: a for a in areas}
    for grid in grids[::7]:
        parent = by_code[grid.parent]
        assert parent.level == "community" and parent.geometry.covers(grid.geometry)
    assert {a.level for a in areas} == {"district", "street", "area", "community", "grid"}


async def test_a_small_simulation_runs_the_real_pipeline(tmp_path, model_dir) -> None:
    from tests.conftest import make_config

    config = make_config(tmp_path, model_dir)
    config.database.url = ""
    figures = await run_simulation(config, grids=30, cases_per_day=20, days=1, seed=3)
    assert figures["cases_filed"] == 20 and figures["grids"] == 30
    assert figures["closed"] > 0 and 0 < figures["closure_rate"] <= 1
    assert figures["cases_per_s"] > 0 and figures["filing_p99_ms"] >= figures["filing_p50_ms"]


async def test_a_follow_up_call_counts_like_a_rating_once_per_closure(
        clocked: Services, clock: FakeClock) -> None:
    """回访: an operator's call-back result is kept as a rating (source callback) and
    counts in satisfaction when it is the closure's first; a missed call is only noted."""
    s = clocked
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    start = clock()
    worker = await s.teams.add_worker("甲", "grid_worker", f"grid:{GRID}", "t", "1", clock())
    leader = await s.teams.add_worker("长", "grid_leader", f"grid:{GRID}", "t", "2", clock())
    numbers = []
    for k in range(2):
        number = (await s.cases.file(CaseDraft(text="测试", item_code=code, grid_code=GRID,
                                               lat=23.0 + k * 0.01, lon=113.1),
                                     ReporterRef("console", f"call-{k}"))).case.number
        await s.actions.accept(number, worker)
        await s.actions.resolve(number, worker, "处理好了")
        numbers.append(number)
    with pytest.raises(RatingRefused):  # not closed yet
        await s.cases.record_callback(numbers[0], "staff:王", reached=True, score=5)
    for number in numbers:
        await s.actions.verify(number, leader, fixed=True)
    await s.cases.record_callback(numbers[0], "staff:王", reached=False, note="无人接听")
    await s.cases.record_callback(numbers[0], "staff:王", reached=True, score=2,
                                  note="觉得处理太慢")
    with pytest.raises(RatingRefused):  # one 回访 result per closure
        await s.cases.record_callback(numbers[0], "staff:王", reached=True, score=5)
    await s.cases.rate(numbers[1], ReporterRef("console", "call-1"), 5)  # rated in chat first
    await s.cases.record_callback(numbers[1], "staff:王", reached=True, score=3)
    figures = await case_stats(s.db, start, clock() + timedelta(days=1))
    # Counted: the call-back 2 on the first case, the chat 5 on the second (its first).
    assert figures["rated"] == 2 and figures["satisfaction_rate"] == 0.5
    case = await s.cases.get(numbers[0])
    notes = [e.note for e in case.events if e.action == "callback"]
    assert len(notes) == 2 and "未能联系上" in notes[0] and "觉得处理太慢" in notes[1]


async def test_patrol_in_the_simulation_finds_closes_on_the_spot_and_shortens_handling(
        tmp_path, model_dir) -> None:
    """The same city and reports with and without patrol: with grid workers finding most
    problems first, the figures show the finds, more closed on the spot (即办) and less time
    from a problem appearing to its closure — printed beside the seeds' shares."""
    from shell.ops.simulation import SEEDS, Behaviour
    from tests.conftest import make_config

    runs = {}
    for share in (0.0, 0.8):
        config = make_config(tmp_path / f"share-{share}", model_dir)
        config.database.url = ""
        # Citizens' grid matters solved on the spot less often than a patrol's finds (0.8,
        # Pukou), so what patrol changes shows.
        behaviour = Behaviour(on_the_spot=0.3, patrol_share=share)
        runs[share] = await run_simulation(config, grids=30, cases_per_day=30, days=1, seed=5,
                                           behaviour=behaviour)
    without, with_patrol = runs[0.0], runs[0.8]
    assert without["found_by_patrol"] == 0 and without["patrol_finds_on_the_spot"] == 0
    assert without["avg_handling_hours_patrol"] is None
    assert with_patrol["cases_filed"] == without["cases_filed"] == 30
    assert with_patrol["found_by_patrol"] > 15 and with_patrol["found_by_patrol_share"] > 0.5
    assert 0 < with_patrol["patrol_finds_on_the_spot"] <= with_patrol["handled_on_the_spot"]
    assert with_patrol["on_the_spot_share"] > without["on_the_spot_share"]
    assert with_patrol["hours_problem_to_close"] < without["hours_problem_to_close"]
    assert with_patrol["avg_handling_hours_patrol"] < with_patrol["avg_handling_hours_citizen"]
    for figures in runs.values():
        assert set(figures["versus_seeds"]) == set(SEEDS)
        row = figures["versus_seeds"]["solved_at_grid"]
        assert row["seed"] == 0.8 and row["simulated"] == figures["solved_at"]["grid"]
    assert runs[0.8]["versus_seeds"]["on_the_spot_share"]["seed"] == 0.355
