"""`gridbot simulate`: a synthetic city run through the real pipeline on a simulated clock.

Reports (seed-corpus texts at random points) are classified, located, filed and dispatched by
the same code the bot uses; simulated workers accept, resolve (some late, some never), verify
and get rated; timers remind and escalate. The output is the figures of bot/stats.py plus
filing throughput and latency.

Patrol (巡查): each problem appears some hours before a citizen would report it; with
`Behaviour.patrol_share` the grid's worker finds it first, on patrol, and files it as a
patrol report — solving most grid matters on the spot (即办, photos before and after) and
handing the rest on. The figures then say how many were found by patrol and closed on the
spot, the grid / street / district shares, and the hours from a problem appearing to its
closure, beside the seeds' shares (`SEEDS`).
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shapely.geometry import box
from sqlalchemy import select

from bot.actions import ActionRefused
from bot.cases import CaseDraft, ReporterRef
from bot.config import Config
from bot.grid_store import replace_areas
from bot.grids import Area
from bot.models import Case, Worker
from bot.services import Services, build_services
from bot.stats import case_stats, chosen_cases, group_counts
from bot.storage import Database, upgrade
from bot.workflow import Status
from training.corpus import read_seed_corpus

CELL_DEG = 0.002  # ~200 m grid cells
TICK = timedelta(minutes=30)  # how often simulated time lets workers and timers act
FAN_OUT = 3  # 3×3 children per parent at each level above the grid


@dataclass
class Behaviour:
    """How simulated workers behave (shares are probabilities per case and level)."""

    on_the_spot: float = 0.75  # of grid-level cases; Chancheng: over 30% of all cases
    never: float = 0.06  # nobody acts at this level: the deadline escalates it
    late: float = 0.12  # resolved, but after the deadline
    not_fixed: float = 0.04  # the check fails: 二次派单
    satisfied: float = 0.92  # Haikou: 92% satisfied
    # Patrol: the share of problems the grid's worker finds on patrol before any citizen
    # reports them (0 = none: every case is a citizen's report).
    patrol_share: float = 0.0
    # Of the grid matters a patrol finds, the share solved there and then (即办). Pukou (seed
    # 001): of what patrol finds, "80% 由社区或网格员在现场解决".
    patrol_on_spot: float = 0.8
    # Hours from a problem appearing to a citizen reporting it (uniform 0 to twice this); a
    # patrol that finds it does so at a uniform moment before then.
    citizen_delay_h: float = 6.0


# The seeds' figures the simulated ones are printed beside.
SEEDS = {
    # Chancheng (seed 000), 2016: 48,701 light cases handled on the spot, 88,486 passed to the
    # responsible units: 35.5% on the spot ("over 30%", design.md).
    "on_the_spot_share": (0.355, "禅城 2016：48,701 件即办 / 137,187 件"),
    # Pukou (seed 001): 80% solved in the grid on patrol, 80% of the other 20% by the street
    # (一级响应, 16%), the last 4% by the district (二级响应).
    "solved_at_grid": (0.80, "浦口：80% 网格现场解决"),
    "solved_at_street": (0.16, "浦口：16% 街道一级响应"),
    "solved_at_district": (0.04, "浦口：4% 区二级响应兜底"),
}


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def synthetic_city(n_grids: int, origin: tuple[float, float] = (39.8, 116.2)) -> list[Area]:
    """district → streets → areas → communities → grids on a square lattice; every parent
    holds up to 3×3 children, so the shapes tile exactly."""
    side = math.ceil(math.sqrt(n_grids))
    lat0, lon0 = origin
    areas: list[Area] = []
    cells = [(r, c) for r in range(side) for c in range(side)][:n_grids]
    codes: dict[tuple[str, int, int], str] = {}

    def parent_code(level: str, r: int, c: int, span: int, parent: str) -> str:
        key = (level, r // span, c // span)
        if key not in codes:
            codes[key] = f"{parent}{len([k for k in codes if k[0] == level]) + 1:03d}"
            rows = range((r // span) * span, (r // span + 1) * span)
            cols = range((c // span) * span, (c // span + 1) * span)
            inside = [(a, b) for a, b in cells if a in rows and b in cols]
            geom = box(lon0 + min(b for _, b in inside) * CELL_DEG,
                       lat0 + min(a for a, _ in inside) * CELL_DEG,
                       lon0 + (max(b for _, b in inside) + 1) * CELL_DEG,
                       lat0 + (max(a for a, _ in inside) + 1) * CELL_DEG)
            names = {"street": "街道", "area": "片区", "community": "社区"}
            areas.append(Area(codes[key], f"模拟{names[level]}{len(codes)}", level,
                              parent or "S", geom))
        return codes[key]

    district = Area("S", "模拟区", "district", None,
                    box(lon0, lat0, lon0 + side * CELL_DEG, lat0 + side * CELL_DEG))
    areas.append(district)
    for index, (r, c) in enumerate(cells):
        street = parent_code("street", r, c, FAN_OUT**3, "S")
        area = parent_code("area", r, c, FAN_OUT**2, street)
        community = parent_code("community", r, c, FAN_OUT, area)
        geom = box(lon0 + c * CELL_DEG, lat0 + r * CELL_DEG,
                   lon0 + (c + 1) * CELL_DEG, lat0 + (r + 1) * CELL_DEG)
        areas.append(Area(f"{community}G{index:06d}", f"模拟网格{index + 1}", "grid", community,
                          geom, {"leader": "模拟网格长", "workers": ["模拟网格员"]}))
    # A parent's box may cover lattice cells past n_grids (the last row): no grid is there,
    # so a point in it locates to nothing, as a hole would.
    return areas


async def _prepare(config: Config, n_grids: int, clock: SimClock) -> Services:
    db = Database(config.database_url)
    await upgrade(db.url)
    await replace_areas(db, synthetic_city(n_grids))
    await db.close()
    return await build_services(config, clock)


async def run_simulation(config: Config, grids: int, cases_per_day: int, days: int,
                         seed: int, behaviour: Behaviour | None = None) -> dict[str, Any]:
    behaviour = behaviour or Behaviour()
    rng = random.Random(seed)
    start = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a Monday
    clock = SimClock(start)
    with tempfile.TemporaryDirectory() as tmp:
        if not config.database.url:
            config.database.url = f"sqlite+aiosqlite:///{Path(tmp) / 'simulation.db'}"
        config.cases.duplicate_radius_m = 0  # random points: every report is its own case
        services = await _prepare(config, grids, clock)
        try:
            return await _run(services, clock, rng, behaviour, cases_per_day, days, start,
                              seed)
        finally:
            await services.close()


async def _run(s: Services, clock: SimClock, rng: random.Random, b: Behaviour,
               per_day: int, days: int, start: datetime, seed: int) -> dict[str, Any]:
    texts, _ = read_seed_corpus(s.config.path(s.config.nlp.seed_corpus), s.catalogue)
    district = next(a for a in s.grids.areas.values() if a.level == "district")
    worker = await s.teams.add_worker("模拟处置员", "grid_worker", f"district:{district.code}",
                                      "sim", "worker", clock())
    checker = await s.teams.add_worker("模拟核查员", "supervisor", f"district:{district.code}",
                                       "sim", "checker", clock())
    model = s.models.get()
    plans: dict[str, tuple[datetime, str]] = {}  # case number → (when, what) for its level
    planned_for: dict[str, str] = {}  # case number → assignee the plan was made for
    appeared: dict[str, datetime] = {}  # case number → when its problem appeared
    latencies: list[float] = []
    filing_seconds = 0.0
    arrivals = sorted(start + timedelta(seconds=rng.uniform(0, days * 86400))
                      for _ in range(per_day * days))
    # The problems' own timeline on a generator of its own: the reports, places and workers'
    # choices are the same draws as without it, and runs of one seed that differ only in
    # patrol_share share their problems' appearances (a fair comparison).
    problems = sorted(_problems(arrivals, b, random.Random(f"{seed}-problems"), start))
    end = start + timedelta(days=days)
    step = TICK
    moment = start
    reports = iter(problems)
    upcoming = next(reports, None)
    # After the last report, time runs on until no worker has anything planned (or 60 days).
    while moment <= end or (plans and moment <= end + timedelta(days=60)):
        while upcoming is not None and upcoming[0] <= moment:
            clock.now, appeared_at, by_patrol = upcoming
            grid = rng.choice(s.grids.grids)
            point = grid.geometry.representative_point()
            began = time.perf_counter()
            code = model.rank(rng.choice(texts), k=1)[0].code
            located = s.locator.from_point(point.y, point.x)
            if located.spot is None:  # a representative point lies inside its grid
                raise RuntimeError(f"simulation: grid {grid.code}'s own point "
                                   f"({point.y}, {point.x}) is in no grid")
            grid_code = located.spot.grid.code
            citizen = f"citizen-{rng.randrange(10**6)}"  # drawn either way: the same draws
            if by_patrol:  # the grid's own worker, with a photo of what they found
                draft = CaseDraft(text=f"巡查发现 {len(latencies)}", item_code=code,
                                  grid_code=grid_code, lat=point.y, lon=point.x,
                                  media=[f"sim-before-{len(latencies)}"], source="patrol")
                reporter = ReporterRef("sim", f"grid-{grid_code}")
            else:
                draft = CaseDraft(text=f"模拟反映 {len(latencies)}", item_code=code,
                                  grid_code=grid_code, lat=point.y, lon=point.x)
                reporter = ReporterRef("sim", citizen)
            filing = await s.cases.file(draft, reporter)
            took = time.perf_counter() - began
            latencies.append(took)
            filing_seconds += took
            appeared[filing.case.number] = appeared_at
            await _plan(s, rng, b, plans, planned_for, filing.case.number, clock.now)
            upcoming = next(reports, None)
        clock.now = moment
        while await s.timers.run_once():
            pass
        await _act_on_plans(s, rng, b, plans, planned_for, worker, checker, clock.now)
        moment += step
    latencies.sort()
    figures = await case_stats(s.db, start, end)

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {**figures, **await _patrol_figures(s, start, end, appeared, b),
            "grids": len(s.grids.grids), "days": days, "cases_per_day": per_day,
            "cases_per_s": round(len(latencies) / filing_seconds, 1) if filing_seconds else 0,
            "filing_p50_ms": pct(0.5), "filing_p95_ms": pct(0.95), "filing_p99_ms": pct(0.99)}


def _problems(arrivals: list[datetime], b: Behaviour, timeline: random.Random,
              start: datetime) -> list[tuple[datetime, datetime, bool]]:
    """(filed at, appeared at, found by patrol) per problem. A citizen reports at its arrival,
    some hours after the problem appeared; a patrol finds it at a moment in between."""
    problems = []
    for arrival in arrivals:
        # Every draw is made whatever the share, so one seed gives the same problems.
        appeared = max(start, arrival - timedelta(
            hours=timeline.uniform(0, 2 * b.citizen_delay_h)))
        found = appeared + (arrival - appeared) * timeline.random()
        if timeline.random() < b.patrol_share:
            problems.append((found, appeared, True))
        else:
            problems.append((arrival, appeared, False))
    return problems


async def _patrol_figures(s: Services, start: datetime, end: datetime,
                          appeared: dict[str, datetime], b: Behaviour) -> dict[str, Any]:
    """Found by patrol, closed on the spot, handling hours per source, the hours from a
    problem appearing to its closure, and the simulated shares beside the seeds'."""
    by_source = await group_counts(s.db, chosen_cases(start, end), Case.source)
    patrol = by_source.get("patrol", {})
    citizen = by_source.get("citizen", {})
    filed = sum(n["filed"] for n in by_source.values())
    async with s.db.session() as session:
        closed = (await session.execute(
            select(Case.number, Case.closed_at).where(
                chosen_cases(start, end), Case.status == Status.CLOSED,
                Case.closed_at.is_not(None)))).all()
    waits = [(at - appeared[number]).total_seconds() / 3600 for number, at in closed
             if at is not None and number in appeared]

    def hours(n: dict[str, float]) -> float | None:
        return round(n["hours"] / n["timed"], 2) if n.get("timed") else None

    overall = await case_stats(s.db, start, end)
    simulated = {"on_the_spot_share": overall["on_the_spot_share"],
                 **{f"solved_at_{lv}": share for lv, share in overall["solved_at"].items()}}
    return {
        "patrol_share": b.patrol_share,
        "found_by_patrol": int(patrol.get("filed", 0)),
        "found_by_patrol_share": round(patrol.get("filed", 0) / filed, 4) if filed else None,
        "patrol_finds_on_the_spot": int(patrol.get("on_spot", 0)),
        "avg_handling_hours_patrol": hours(patrol),
        "avg_handling_hours_citizen": hours(citizen),
        "hours_problem_to_close": round(sum(waits) / len(waits), 2) if waits else None,
        "versus_seeds": {name: {"simulated": simulated[name], "seed": seed, "source": source}
                         for name, (seed, source) in SEEDS.items()},
    }


async def _plan(s: Services, rng: random.Random, b: Behaviour, plans: dict, planned_for: dict,
                number: str, now: datetime) -> None:
    """Decide what the workers of the case's current level will do, and when."""
    case = await s.cases.get(number)
    if case is None or case.status != Status.DISPATCHED:
        return
    first = number not in planned_for
    planned_for[number] = case.assignee
    due = case.handling_due or now + timedelta(days=1)
    roll = rng.random()
    on_spot_possible = case.handling_level == "grid" and case.current_level == "grid"
    if case.source == "patrol":
        # The finder solves it there and then, or hands it on: never later on the spot.
        if on_spot_possible and first and rng.random() < b.patrol_on_spot:
            plans[number] = (now + timedelta(minutes=rng.uniform(5, 20)), "on_spot")
            return
        on_spot_possible = False
    if on_spot_possible and case.reopen_count == 0 and rng.random() < b.on_the_spot:
        plans[number] = (now + timedelta(minutes=rng.uniform(10, 90)), "on_spot")
    elif roll < b.never:
        plans.pop(number, None)  # nobody comes: the timer escalates it
    elif roll < b.never + b.late:
        plans[number] = (due + timedelta(hours=rng.uniform(1, 24)), "resolve")
    else:
        plans[number] = (now + (due - now) * rng.uniform(0.1, 0.9), "resolve")


async def _act_on_plans(s: Services, rng: random.Random, b: Behaviour, plans: dict,
                        planned_for: dict, worker: Worker, checker: Worker,
                        now: datetime) -> None:
    for number in [n for n, (when, _) in plans.items() if when <= now]:
        _, what = plans.pop(number)
        case = await s.cases.get(number)
        if case is None or planned_for.get(number) != case.assignee:
            await _plan(s, rng, b, plans, planned_for, number, now)  # escalated meanwhile
            continue
        try:
            if what == "on_spot":  # only the grid's own worker may solve it on the spot
                local = await s.teams.add_worker("模拟网格员", "grid_worker",
                                                 f"grid:{case.grid_code}", "sim",
                                                 f"grid-{case.grid_code}", now)
                # A patrol find's 即办 counts with the photo after (the one before came with it).
                after = [f"sim-after-{number}"] if case.source == "patrol" else None
                await s.actions.resolve(number, local, "现场即办", media=after)
            else:
                if case.status == Status.DISPATCHED:
                    await s.actions.accept(number, worker)
                await s.actions.resolve(number, worker, "模拟处置完成")
            fixed = rng.random() >= b.not_fixed
            case = await s.actions.verify(number, checker, fixed=fixed)
        except ActionRefused:
            continue
        if case.status == Status.CLOSED and case.source != "patrol":  # no citizen to rate it
            score = rng.choice([4, 5]) if rng.random() < b.satisfied else rng.choice([1, 2, 3])
            if case.reporter_id is None:  # every simulated case is filed with a ReporterRef
                raise RuntimeError(f"simulation: case {number} has no reporter to rate it")
            reporter = await _reporter_of(s, case.reporter_id)
            case = await s.cases.rate(number, reporter, score)
        if case.status == Status.DISPATCHED:  # not fixed, or reopened by a bad rating
            await _plan(s, rng, b, plans, planned_for, number, now)
    # Cases a timer escalated since the last tick have no plan for their new level yet.
    async with s.db.session() as session:
        moved = (await session.execute(
            select(Case.number, Case.assignee).where(
                Case.status == Status.DISPATCHED, Case.updated_at > now - TICK)
        )).all()
    for number, assignee in moved:
        if planned_for.get(number) != assignee:
            await _plan(s, rng, b, plans, planned_for, number, now)


async def _reporter_of(s: Services, reporter_id: int) -> ReporterRef:
    from bot.models import Reporter

    async with s.db.session() as session:
        row = await session.get(Reporter, reporter_id)
    if row is None:  # cases.reporter_id is a foreign key: only a broken database lacks it
        raise RuntimeError(f"simulation: reporter {reporter_id} not found")
    return ReporterRef(row.channel, row.external_id)
