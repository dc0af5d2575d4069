"""Patrols (巡查): a grid worker starts one in chat, shares their live location, ends it.
The track gives the distance walked, the share of the grid's area covered (the track
buffered by `PATROL_REACH_M`, over the grid's polygon) and whether it left the grid.
Workers' positions are kept for their supervisors only, never published."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Integer, and_, func, select
from sqlalchemy.orm import selectinload

from bot.cases import distance_m
from bot.coords import to_wgs84
from bot.duty import places_of, ticked
from bot.grids import GridMap
from bot.models import Case, CaseEvent, Patrol, PatrolPlan, PatrolPoint, Reporter, Worker
from bot.scope import Scope
from bot.storage import Database

# Console roles that may see workers' tracks (the case page's, the dashboard's): those who
# supervise workers. A grid leader only within their area.
TRACK_ROLES = ("dispatcher", "supervisor", "grid_leader")
PATROL_REACH_M = 30.0  # what a worker on the street sees on either side of their path
MAX_JUMP_M = 2000.0  # a point this far from the last is a GPS glitch, not a walk
MAX_DRAWN_POINTS = 500  # a track on a staff map: more points than this are thinned


class PatrolError(ValueError):
    """Only a grid's own worker patrols it."""


@dataclass(frozen=True)
class TrackFigures:
    distance_m: float
    covered_share: float  # 0–1 of the grid's area
    left_grid: bool


def track_figures(points: list[tuple[float, float]], grid: BaseGeometry,
                  reach_m: float = PATROL_REACH_M) -> TrackFigures:
    """Distance, coverage and leaving the grid for a track of (lat, lon) WGS-84 points."""
    if not points:
        return TrackFigures(0.0, 0.0, False)
    distance = 0.0
    for (lat1, lon1), (lat2, lon2) in itertools.pairwise(points):
        step = distance_m(lat1, lon1, lat2, lon2)
        if step <= MAX_JUMP_M:
            distance += step
    left = any(not grid.covers(Point(lon, lat)) for lat, lon in points)
    # Metres on a local plane around the grid: plenty precise over a grid's few hundred m.
    lat0 = grid.centroid.y
    scale = np.array([111_320 * math.cos(math.radians(lat0)), 110_540])

    def to_metres(coords: np.ndarray) -> np.ndarray:
        return coords * scale

    area = shapely.transform(grid, to_metres)
    path = (Point(points[0][1], points[0][0]) if len(points) == 1
            else LineString([(lon, lat) for lat, lon in points]))
    seen = shapely.transform(path, to_metres).buffer(reach_m)
    share = area.intersection(seen).area / area.area if area.area > 0 else 0.0
    return TrackFigures(round(distance, 1), round(min(share, 1.0), 4), left)


def track_grids(role: str, scope: str, grids: GridMap) -> frozenset[str] | None:
    """The grids whose patrol tracks a console account may see: None = all of them (the
    command centre), else a set (empty for roles that do not supervise workers)."""
    if role not in TRACK_ROLES:
        return frozenset()
    if role != "grid_leader":
        return None
    area = Scope.parse(scope)
    if not area.is_area:
        return frozenset()
    return frozenset(g.code for g in grids.grids
                     if area.ref in {a.code for a in grids.ancestors(g.code)})


class Patrols:
    def __init__(self, db: Database, grids: GridMap, place_reach_m: float = 50.0) -> None:
        self.db = db
        self.grids = grids
        self.place_reach_m = place_reach_m  # a planned place this close to the track is ticked

    async def start(self, worker: Worker, now: datetime) -> Patrol:
        """Start (or go on with) the worker's patrol of their grid."""
        scope = Scope.parse(worker.scope)
        if scope.kind != "grid" or self.grids.get(scope.ref) is None:
            raise PatrolError(worker.scope)
        open_one = await self.current(worker)
        if open_one is not None:
            return open_one
        async with self.db.session() as session, session.begin():
            patrol = Patrol(worker_id=worker.id, grid_code=scope.ref, started_at=now,
                            distance_m=0.0, covered_share=0.0, left_grid=False)
            session.add(patrol)
        return patrol

    async def current(self, worker: Worker) -> Patrol | None:
        async with self.db.session() as session:
            return (await session.execute(select(Patrol).where(
                Patrol.worker_id == worker.id, Patrol.ended_at.is_(None))
                .order_by(Patrol.id.desc()).limit(1))).scalar()

    async def add_point(self, worker: Worker, lat: float, lon: float, at: datetime,
                        coord: str = "wgs84") -> bool:
        """Add a position to the worker's open patrol; False when they are not on one."""
        patrol = await self.current(worker)
        if patrol is None:
            return False
        lat, lon = to_wgs84(lat, lon, coord)
        async with self.db.session() as session, session.begin():
            session.add(PatrolPoint(patrol_id=patrol.id, at=at, lat=lat, lon=lon))
        return True

    async def end(self, worker: Worker, now: datetime) -> Patrol | None:
        """End the worker's patrol and work out its figures; None when none was open."""
        async with self.db.session() as session, session.begin():
            patrol = (await session.execute(select(Patrol).where(
                Patrol.worker_id == worker.id, Patrol.ended_at.is_(None))
                .options(selectinload(Patrol.points)).with_for_update())).scalar()
            if patrol is None:
                return None
            area = self.grids.get(patrol.grid_code)
            figures = track_figures([(p.lat, p.lon) for p in patrol.points],
                                    area.geometry) if area else TrackFigures(0.0, 0.0, False)
            patrol.ended_at = now
            patrol.distance_m = figures.distance_m
            patrol.covered_share = figures.covered_share
            patrol.left_grid = figures.left_grid
            # The grid's duty list: which of its planned places the track passed.
            plan = await session.get(PatrolPlan, patrol.grid_code)
            if plan is not None:
                patrol.places = ticked([(p.lat, p.lon) for p in patrol.points],
                                       places_of(plan), self.place_reach_m)
        return patrol

    async def planned_places(self, grid_code: str) -> list[str]:
        """The names of the grid's planned places ([] without a plan)."""
        async with self.db.session() as session:
            return [p.name for p in places_of(await session.get(PatrolPlan, grid_code))]

    async def track_of_case(self, case: Case) -> dict[str, Any] | None:
        """The patrol a patrol-found case was reported on: the reporting worker's patrol
        under way when it was filed."""
        if case.source != "patrol" or case.reporter_id is None:
            return None
        found = await self.tracks([
            Worker.id.in_(select(Worker.id).join(Reporter, and_(
                Reporter.channel == Worker.channel,
                Reporter.external_id == Worker.external_id)).where(
                    Reporter.id == case.reporter_id)),
            Patrol.started_at <= case.created_at,
            Patrol.ended_at.is_(None) | (Patrol.ended_at >= case.created_at)], limit=1)
        return found[0] if found else None

    async def tracks(self, where: Any, limit: int = 200) -> list[dict[str, Any]]:
        """Patrols matching `where` (SQL terms on Patrol) with their tracks as [lat, lon]
        lists, newest first: for staff maps only, never a public page."""
        async with self.db.session() as session:
            rows = list((await session.execute(
                select(Patrol, Worker.name).join(Worker, Worker.id == Patrol.worker_id)
                .where(*where).options(selectinload(Patrol.points))
                .order_by(Patrol.started_at.desc()).limit(limit))).all())
        return [{"id": patrol.id, "worker": name, "grid": patrol.grid_code,
                 "started_at": patrol.started_at.isoformat(),
                 "ended_at": patrol.ended_at.isoformat() if patrol.ended_at else None,
                 "km": round(patrol.distance_m / 1000, 2), "coverage": patrol.covered_share,
                 "places": patrol.places or [],
                 "points": _thinned([[round(p.lat, 6), round(p.lon, 6)]
                                     for p in patrol.points])}
                for patrol, name in rows]


def _thinned(points: list[list[float]], most: int = MAX_DRAWN_POINTS) -> list[list[float]]:
    """At most about `most` points of a long track, evenly taken, the last one kept: a live
    location every few seconds is more than a map needs."""
    if len(points) <= most:
        return points
    step = math.ceil(len(points) / most)
    return [*points[::step], points[-1]] if (len(points) - 1) % step else points[::step]


async def worker_figures(db: Database, start: datetime, end: datetime) -> list[dict[str, object]]:
    """Per worker, for patrols started and cases filed in [start, end): patrols, hours and
    km walked, mean coverage, times they left their grid, problems found on patrol and how
    many of those they solved on the spot (即办)."""
    found = (
        select(Worker.id.label("worker_id"), func.count(Case.id).label("found"),
               func.count(func.distinct(CaseEvent.case_id)).label("on_spot"))
        .join(Reporter, and_(Reporter.channel == Worker.channel,
                             Reporter.external_id == Worker.external_id))
        .join(Case, and_(Case.reporter_id == Reporter.id, Case.source == "patrol",
                         Case.created_at >= start, Case.created_at < end))
        .outerjoin(CaseEvent, and_(CaseEvent.case_id == Case.id,
                                   CaseEvent.action == "on_spot"))
        .group_by(Worker.id)).subquery()
    walked = (
        select(Patrol.worker_id.label("worker_id"), func.count(Patrol.id).label("patrols"),
               func.sum(Patrol.distance_m).label("distance"),
               func.avg(Patrol.covered_share).label("coverage"),
               func.sum(func.cast(Patrol.left_grid, Integer)).label("left"))
        .where(Patrol.started_at >= start, Patrol.started_at < end,
               Patrol.ended_at.is_not(None))
        .group_by(Patrol.worker_id)).subquery()
    query = (select(Worker.id, Worker.name, Worker.scope, walked.c.patrols, walked.c.distance,
                    walked.c.coverage, walked.c.left, found.c.found, found.c.on_spot)
             .outerjoin(walked, walked.c.worker_id == Worker.id)
             .outerjoin(found, found.c.worker_id == Worker.id)
             .where((walked.c.patrols.is_not(None)) | (found.c.found.is_not(None)))
             .order_by(Worker.id))
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    result = []
    for row in rows:
        found_n, on_spot = int(row.found or 0), int(row.on_spot or 0)
        result.append({
            "worker": row.name, "scope": row.scope, "patrols": int(row.patrols or 0),
            "km": round(float(row.distance or 0) / 1000, 2),
            "coverage": round(float(row.coverage or 0), 4),
            "left_grid": int(row.left or 0), "found_on_patrol": found_n,
            "on_the_spot": on_spot,
            "on_the_spot_share": round(on_spot / found_n, 4) if found_n else None,
        })
    return result
