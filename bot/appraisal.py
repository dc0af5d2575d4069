"""考核: the score of each grid, street, department and grid worker for a period (a month),
made of parts each scored 0–100 and weighted by `[appraisal]` in config.toml.

The parts and how each is scored (`RULES` carries the same text for the tables):
- discovery: patrol reports (cases.source = patrol) per worker-day, 100 at
  `discovery_target`, linear below it. A worker-day is a day of the period (up to now) on
  which a grid worker or leader of the unit was registered.
- on_spot: share of the cases handled on the spot (即办), 100 at `on_spot_target`.
- on_time: handled by the handling deadline, of those handled; × 100.
- closure: closed, of the cases filed; × 100.
- satisfaction: the first rating of each closure that is 4–5 (`bot.stats`); × 100.
- urges: 督办 per case filed (by a dispatcher or by a deadline), fewer is better:
  100 × (1 − urges per case), 0 at one urge a case or more.
- coverage: the mean share of the grid's area one patrol covered (`bot.patrol`); × 100; 0 for
  a grid with workers and no patrol.
The total is the weighted mean of the parts a row has a figure for (a department does not
patrol; a unit with nothing rated has no satisfaction): weights are scaled to sum to 1 over
those parts. Cases are those filed in the period; the workers' are the cases they took
(接单) or solved, and their discovery counts their own patrol reports.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, cast, func, select

from bot.config import APPRAISAL_PARTS, AppraisalConfig
from bot.grids import GridMap
from bot.models import Case, CaseEvent, Patrol, Reporter, Worker
from bot.scope import Scope
from bot.stats import COUNTS, chosen_cases, group_counts
from bot.storage import Database
from bot.workflow import Status

UNITS = ("worker", "grid", "street", "department")
PATROLLING_ROLES = ("grid_worker", "grid_leader")
RULES = {
    "discovery": "patrol reports per worker-day ÷ discovery_target × 100 (at most 100)",
    "on_spot": "即办 share ÷ on_spot_target × 100 (at most 100)",
    "on_time": "on-time rate × 100",
    "closure": "closure rate × 100",
    "satisfaction": "first-rating satisfaction × 100",
    "urges": "100 × (1 − 督办 per case), at least 0",
    "coverage": "mean patrol coverage of the grid × 100",
}


@dataclass
class _Tally:
    """What one unit's parts are made from: the case counts of `bot.stats.COUNTS` plus its
    patrols and worker-days."""

    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0.0))
    patrols: int = 0
    coverage_sum: float = 0.0
    distance_m: float = 0.0
    left_grid: int = 0
    worker_days: int = 0
    found: int = 0  # patrol reports (for a worker: their own)
    found_on_spot: int = 0  # … of which they solved on the spot

    def add(self, other: _Tally) -> None:
        for name in COUNTS:
            self.counts[name] += other.counts[name]
        self.patrols += other.patrols
        self.coverage_sum += other.coverage_sum
        self.distance_m += other.distance_m
        self.left_grid += other.left_grid
        self.worker_days += other.worker_days
        self.found += other.found
        self.found_on_spot += other.found_on_spot


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _capped(value: float | None, target: float) -> float | None:
    return None if value is None else min(100.0, 100.0 * value / target)


def parts_of(tally: _Tally, config: AppraisalConfig, patrols: bool) -> dict[str, dict[str, Any]]:
    """Each part's figure (`value`) and its 0–100 score; None where the unit has no figure.
    `patrols`: whether the unit patrols at all (grids, streets, workers; not departments)."""
    n = tally.counts
    discovery = _ratio(tally.found, tally.worker_days) if patrols else None
    on_spot = _ratio(n["on_spot"], n["filed"])
    on_time = _ratio(n["on_time"], n["handled"])
    closure = _ratio(n["closed"], n["filed"])
    satisfaction = _ratio(n["satisfied"], n["rated"])
    urges = _ratio(n["urges"], n["filed"])
    coverage: float | None = None
    if patrols and tally.patrols:
        coverage = tally.coverage_sum / tally.patrols
    elif patrols and tally.worker_days:
        coverage = 0.0  # a team that never patrolled covered nothing
    scores = {
        "discovery": _capped(discovery, config.discovery_target),
        "on_spot": _capped(on_spot, config.on_spot_target),
        "on_time": None if on_time is None else 100.0 * on_time,
        "closure": None if closure is None else 100.0 * closure,
        "satisfaction": None if satisfaction is None else 100.0 * satisfaction,
        "urges": None if urges is None else max(0.0, 100.0 * (1.0 - urges)),
        "coverage": None if coverage is None else 100.0 * coverage,
    }
    values = {"discovery": discovery, "on_spot": on_spot, "on_time": on_time,
              "closure": closure, "satisfaction": satisfaction, "urges": urges,
              "coverage": coverage}
    return {part: {"value": None if values[part] is None else round(values[part] or 0.0, 4),
                   "score": None if scores[part] is None else round(scores[part] or 0.0, 1)}
            for part in APPRAISAL_PARTS}


def total_of(parts: dict[str, dict[str, Any]], config: AppraisalConfig) -> float | None:
    """The weighted mean of the parts that have a score (weights rescaled over them)."""
    weights = config.weights()
    present = [p for p in APPRAISAL_PARTS if parts[p]["score"] is not None and weights[p] > 0]
    weight = sum(weights[p] for p in present)
    if not weight:
        return None
    return round(sum(weights[p] * parts[p]["score"] for p in present) / weight, 1)


def _worker_id(db: Database, actor: Any) -> Any:
    """The worker id in an event's actor text 'worker:ID:NAME' (bot.actions.actor_of), in
    SQL: the two databases split strings differently."""
    if db.dialect == "postgresql":
        return cast(func.split_part(actor, ":", 2), Integer)
    rest = func.substr(actor, 8)  # after 'worker:'
    return cast(func.substr(rest, 1, func.instr(rest, ":") - 1), Integer)


@dataclass
class Appraisal:
    """The appraisal of [start, end) as one account sees it: `where` narrows the cases
    (`bot.staff.visible_cases`), `grid_codes` the grids and their workers (None = all)."""

    db: Database
    grids: GridMap
    start: datetime
    end: datetime
    now: datetime
    config: AppraisalConfig
    where: ColumnElement[bool] | None = None
    grid_codes: frozenset[str] | None = None

    @property
    def _chosen(self) -> ColumnElement[bool]:
        return chosen_cases(self.start, self.end, self.where)

    def _shown(self, grid_code: str) -> bool:
        return self.grid_codes is None or grid_code in self.grid_codes

    async def rows(self, by: str) -> list[dict[str, Any]]:
        """One row per unit, best first: rank, key, name, score, parts and the counts."""
        if by not in UNITS:
            raise ValueError(f"--by must be one of {', '.join(UNITS)}")
        if by == "department":
            rows = await self._departments()
        elif by == "worker":
            rows = await self._workers()
        else:
            rows = await self._areas(by)
        rows.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0.0), r["key"]))
        for rank, row in enumerate(rows, 1):
            row["rank"] = rank
        return rows

    async def report(self, by: str) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "by": by,
                "weights": {p: round(w, 4) for p, w in self.config.weights().items()},
                "rules": RULES, "rows": await self.rows(by)}

    # -- rows ---------------------------------------------------------------------------------

    def _row(self, key: str, name: str, tally: _Tally, patrols: bool) -> dict[str, Any]:
        parts = parts_of(tally, self.config, patrols)
        n = tally.counts
        return {"key": key, "name": name, "score": total_of(parts, self.config),
                "parts": parts, "cases_filed": int(n["filed"]),
                "handled_on_the_spot": int(n["on_spot"]), "closed": int(n["closed"]),
                "urges": int(n["urges"]), "found_on_patrol": tally.found,
                "patrols": tally.patrols, "worker_days": tally.worker_days}

    async def _departments(self) -> list[dict[str, Any]]:
        counts = await group_counts(self.db, self._chosen, Case.department)
        return [self._row(name, name, _Tally(n), patrols=False)
                for name, n in counts.items()]

    async def _grid_tallies(self) -> dict[str, _Tally]:
        tallies: dict[str, _Tally] = defaultdict(_Tally)
        for code, n in (await group_counts(self.db, self._chosen, Case.grid_code)).items():
            tallies[code].counts = n
            tallies[code].found = int(n["patrol_found"])
        for (_, grid_code), walked in (await self._patrols()).items():
            tallies[grid_code].add(walked)
        for worker, days in await self._worker_days():
            if Scope.parse(worker.scope).kind == "grid":
                tallies[Scope.parse(worker.scope).ref].worker_days += days
        return {code: t for code, t in tallies.items() if self._shown(code)}

    async def _areas(self, by: str) -> list[dict[str, Any]]:
        tallies = await self._grid_tallies()
        if by == "grid":
            return [self._row(code, area.name if (area := self.grids.get(code)) else code,
                              tally, patrols=True) for code, tally in tallies.items()]
        streets: dict[str, _Tally] = defaultdict(_Tally)
        for code, tally in tallies.items():
            street = self.grids.at_level(code, "street")
            if street is not None:  # a grid code the map does not know has no street
                streets[street.code].add(tally)
        return [self._row(code, self.grids.areas[code].name, tally, patrols=True)
                for code, tally in streets.items()]

    async def _workers(self) -> list[dict[str, Any]]:
        worker_id = _worker_id(self.db, CaseEvent.actor)
        # The cases a worker took (接单) or solved: one case may be several workers'.
        worked = (
            select(CaseEvent.case_id.label("case_id"), worker_id.label("grp"))
            .where(CaseEvent.actor.like("worker:%"),
                   CaseEvent.to_status.in_([Status.HANDLING, Status.HANDLED]),
                   CaseEvent.case_id.in_(select(Case.id).where(self._chosen)))
            .distinct().subquery())
        counts = await group_counts(self.db, self._chosen, worked.c.grp, through=worked)
        tallies: dict[int, _Tally] = defaultdict(_Tally)
        for key, n in counts.items():
            tallies[int(key)].counts = n
        for (worker, _), walked in (await self._patrols()).items():
            tallies[worker].add(walked)
        for worker_id_, found, on_spot in await self._finds():
            tallies[worker_id_].found += found
            tallies[worker_id_].found_on_spot += on_spot
        days = {w.id: d for w, d in await self._worker_days()}
        for wid, d in days.items():
            tallies[wid].worker_days = d
        async with self.db.session() as session:
            people = {w.id: w for w in (await session.execute(
                select(Worker).where(Worker.id.in_(list(tallies))))).scalars()}
        rows = []
        for wid, tally in tallies.items():
            person = people.get(wid)
            if person is None:
                continue
            scope = Scope.parse(person.scope)
            if self.grid_codes is not None and not (scope.kind == "grid"
                                                    and scope.ref in self.grid_codes):
                continue
            row = self._row(str(wid), person.name, tally,
                            patrols=person.role in PATROLLING_ROLES)
            # The columns `gridbot stats --by worker` always had.
            row.update({
                "worker": person.name, "scope": person.scope,
                "km": round(tally.distance_m / 1000, 2),
                "coverage": round(tally.coverage_sum / tally.patrols, 4) if tally.patrols
                else 0.0,
                "left_grid": tally.left_grid, "on_the_spot": tally.found_on_spot,
                "on_the_spot_share": round(tally.found_on_spot / tally.found, 4)
                if tally.found else None,
            })
            rows.append(row)
        return rows

    # -- what the rows are made from ------------------------------------------------------------

    async def _patrols(self) -> dict[tuple[int, str], _Tally]:
        """Ended patrols started in the period, per (worker, grid)."""
        query = (select(Patrol.worker_id, Patrol.grid_code, func.count(),
                        func.sum(Patrol.covered_share), func.sum(Patrol.distance_m),
                        func.sum(cast(Patrol.left_grid, Integer)))
                 .where(Patrol.started_at >= self.start, Patrol.started_at < self.end,
                        Patrol.ended_at.is_not(None))
                 .group_by(Patrol.worker_id, Patrol.grid_code))
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        return {(int(w), str(g)): _Tally(patrols=int(n), coverage_sum=float(c or 0),
                                         distance_m=float(d or 0), left_grid=int(left or 0))
                for w, g, n, c, d, left in rows if self._shown(str(g))}

    async def _finds(self) -> list[tuple[int, int, int]]:
        """(worker id, their patrol reports filed in the period, of those solved 即办)."""
        on_spot = (select(CaseEvent.case_id).where(CaseEvent.action == "on_spot")
                   .distinct().subquery())
        query = (
            select(Worker.id, func.count(Case.id), func.count(on_spot.c.case_id))
            .join(Reporter, and_(Reporter.channel == Worker.channel,
                                 Reporter.external_id == Worker.external_id))
            .join(Case, and_(Case.reporter_id == Reporter.id, Case.source == "patrol",
                             self._chosen))
            .outerjoin(on_spot, on_spot.c.case_id == Case.id)
            .group_by(Worker.id))
        async with self.db.session() as session:
            return [(int(w), int(f), int(s)) for w, f, s in (await session.execute(query)).all()]

    async def _worker_days(self) -> list[tuple[Worker, int]]:
        """Active grid workers and leaders with the days of the period (up to now, started
        days counted whole) they were registered."""
        until = min(self.end, self.now)
        async with self.db.session() as session:
            people = list((await session.execute(
                select(Worker).where(Worker.active.is_(True),
                                     Worker.role.in_(PATROLLING_ROLES),
                                     Worker.scope.like("grid:%"),
                                     Worker.created_at < until))).scalars())
        result = []
        for person in people:
            since = max(self.start, person.created_at)
            days = math.ceil((until - since) / timedelta(days=1)) if until > since else 0
            if days and self._shown(Scope.parse(person.scope).ref):
                result.append((person, days))
        return result
