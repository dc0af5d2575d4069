"""Duty lists (巡查计划): each grid is patrolled every working day or once a working week,
past its planned places (schools, markets, sites from the gazetteer). A patrol's track
passing within `place_reach_m` of a place ticks it. Once a period's working time is over,
a grid with no patrol in it — or whose patrols missed planned places — gets a 督办 in its
group chat, like an overdue case. Written once per grid and period across server
processes: the outbox row's idempotency key is the claim."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from bot.cases import CaseService
from bot.cases.notices import Recipient
from bot.config import PatrolConfig
from bot.models import OutboxMessage, Patrol, PatrolPlan, PatrolPoint
from bot.periodic import repeat
from bot.scope import Scope
from bot.texts import t
from nlp.places import Gazetteer

log = logging.getLogger(__name__)
EVERY = ("workday", "week")  # how often a grid is patrolled
PLACE_KINDS = ("school", "market", "compound", "landmark")  # what a plan may name
CHECK_EVERY_S = 300.0


class DutyError(ValueError):
    """A plan that cannot be: an unknown grid, period or place."""


@dataclass(frozen=True)
class PlannedPlace:
    name: str
    kind: str
    lat: float  # WGS-84
    lon: float


@dataclass(frozen=True)
class Period:
    every: str
    start: datetime  # local midnight of the day, or of the week's Monday
    end: datetime  # exclusive
    due: datetime  # when it is checked: the end of its last working hours

    @property
    def key(self) -> str:
        return f"{self.every}:{self.start.date().isoformat()}"


def ticked(points: list[tuple[float, float]], places: Iterable[PlannedPlace],
           reach_m: float) -> list[str]:
    """The places a track of (lat, lon) points passes within `reach_m` of, by name."""
    places = list(places)
    if not points or not places:
        return []
    lat0 = points[0][0]
    scale = np.array([111_320 * math.cos(math.radians(lat0)), 110_540])  # metres per degree

    def to_metres(coords: np.ndarray) -> np.ndarray:
        return coords * scale

    path = (Point(points[0][1], points[0][0]) if len(points) == 1
            else LineString([(lon, lat) for lat, lon in points]))
    reach = shapely.transform(path, to_metres).buffer(reach_m)
    return [p.name for p in places
            if reach.covers(shapely.transform(Point(p.lon, p.lat), to_metres))]


def places_of(plan: PatrolPlan | None) -> list[PlannedPlace]:
    return [PlannedPlace(**p) for p in (plan.places or [])] if plan is not None else []


class DutyLists:
    def __init__(self, cases: CaseService, config: PatrolConfig, gazetteer: Gazetteer) -> None:
        self.cases = cases
        self.config = config
        self.gazetteer = gazetteer  # where the plans' places come from

    # -- plans ------------------------------------------------------------------------------

    def gazetteer_places(self, grid_code: str, kinds: Iterable[str] = (),
                         names: Iterable[str] = ()) -> list[PlannedPlace]:
        """The grid's places of `kinds`, and the places named (anywhere: a plan may send a
        patrol past a school just over the border)."""
        kinds, names = set(kinds), [n.strip() for n in names if n.strip()]
        if unknown := kinds - set(PLACE_KINDS):
            raise DutyError(f"unknown place kinds {sorted(unknown)}; use {PLACE_KINDS}")
        every_place = list(self.gazetteer.places)
        chosen = [p for p in every_place if p.grid == grid_code and p.kind in kinds]
        for name in names:
            found = next((p for p in every_place if name == p.name or name in p.aliases), None)
            if found is None:
                raise DutyError(f"no place named '{name}' in the gazetteer")
            chosen.append(found)
        seen: set[str] = set()
        result = []
        for p in chosen:
            if p.name not in seen:
                seen.add(p.name)
                result.append(PlannedPlace(p.name, p.kind, p.lat, p.lon))
        return result

    async def set_plan(self, grid_code: str, every: str,
                       places: list[PlannedPlace]) -> PatrolPlan:
        area = self.cases.grids.get(grid_code)
        if area is None or area.level != "grid":
            raise DutyError(f"unknown grid {grid_code}")
        if every not in EVERY:
            raise DutyError(f"'{every}' is not one of {EVERY}")
        now = self.cases.clock()
        rows = [asdict(p) for p in places]
        async with self.cases.db.session() as session, session.begin():
            plan = await session.get(PatrolPlan, grid_code, with_for_update=True)
            if plan is None:
                plan = PatrolPlan(grid_code=grid_code, every=every, places=rows,
                                  created_at=now, updated_at=now)
                session.add(plan)
            else:
                plan.every, plan.places, plan.updated_at = every, rows, now
        return plan

    async def remove(self, grid_code: str) -> bool:
        async with self.cases.db.session() as session, session.begin():
            gone = (await session.execute(delete(PatrolPlan).where(
                PatrolPlan.grid_code == grid_code).returning(PatrolPlan.grid_code))).scalar()
        return gone is not None

    async def plans(self) -> list[PatrolPlan]:
        async with self.cases.db.session() as session:
            return list((await session.execute(
                select(PatrolPlan).order_by(PatrolPlan.grid_code))).scalars())

    async def plan(self, grid_code: str) -> PatrolPlan | None:
        async with self.cases.db.session() as session:
            return await session.get(PatrolPlan, grid_code)

    # -- periods ----------------------------------------------------------------------------

    def _work_end(self, day: date) -> datetime:
        calendar = self.cases.calendar
        last = calendar.spans[-1][1] if calendar.spans else time(23, 59)
        return datetime.combine(day, last, calendar.tz)

    def last_period(self, every: str, now: datetime) -> Period | None:
        """The latest period whose working time is over at `now` (None: none in the last
        two weeks, a very long holiday)."""
        calendar = self.cases.calendar
        local = now.astimezone(calendar.tz)
        for back in range(15):
            day = local.date() - timedelta(days=back)
            if every == "workday":
                if calendar.is_workday(day) and self._work_end(day) <= local:
                    start = datetime.combine(day, time(0), calendar.tz)
                    return Period(every, start, start + timedelta(days=1), self._work_end(day))
                continue
            monday = day - timedelta(days=day.weekday())
            if day != monday + timedelta(days=6) and back:
                continue  # a week is looked at from its Sunday (or from today)
            workdays = [d for d in (monday + timedelta(days=i) for i in range(7))
                        if calendar.is_workday(d)]
            if workdays and self._work_end(workdays[-1]) <= local:
                start = datetime.combine(monday, time(0), calendar.tz)
                return Period(every, start, start + timedelta(days=7),
                              self._work_end(workdays[-1]))
        return None

    # -- the check --------------------------------------------------------------------------

    async def send_due(self) -> int:
        """督办 for every grid whose last finished period went unpatrolled (or missed some of
        its places), once; how many were written."""
        now = self.cases.clock()
        written = 0
        for plan in await self.plans():
            period = self.last_period(plan.every, now)
            if period is None or plan.created_at > period.start:
                continue  # planned during (or after) the period: judged from the next one
            key = f"duty:{plan.grid_code}:{period.key}"
            async with self.cases.db.session() as session:
                done = (await session.execute(select(OutboxMessage.id).where(
                    OutboxMessage.idempotency_key == key))).first()
                if done is not None:
                    continue
                patrols = list((await session.execute(
                    select(Patrol.id, Patrol.places).where(
                        Patrol.grid_code == plan.grid_code, Patrol.started_at >= period.start,
                        Patrol.started_at < period.end))).all())
                seen: set[str] = set()
                unticked = []  # under way, or ended before the plan: their tracks are read
                for patrol_id, places in patrols:
                    if places is None:
                        unticked.append(patrol_id)
                    else:
                        seen.update(places)
                if unticked and plan.places:
                    points = (await session.execute(
                        select(PatrolPoint.patrol_id, PatrolPoint.lat, PatrolPoint.lon)
                        .where(PatrolPoint.patrol_id.in_(unticked))
                        .order_by(PatrolPoint.patrol_id, PatrolPoint.at))).all()
                    for patrol_id in unticked:
                        seen.update(ticked([(lat, lon) for pid, lat, lon in points
                                            if pid == patrol_id], places_of(plan),
                                           self.config.place_reach_m))
                room = await self.cases.teams.group_of(session, plan.grid_code)
            text = self._urge_text(plan, period, bool(patrols), seen)
            if text is None:
                continue
            to = Recipient(*room) if room is not None else Recipient(
                "console", str(Scope.grid(plan.grid_code)))
            try:
                async with self.cases.db.session() as session, session.begin():
                    session.add(OutboxMessage(
                        idempotency_key=key, case_id=None, channel=to.channel,
                        recipient=to.address, text=text,
                        payload={"kind": "notice", "duty": plan.grid_code,
                                 "period": period.key},
                        status="pending", attempts=0, next_attempt_at=now, created_at=now))
            except IntegrityError:
                continue  # another process wrote it
            written += 1
        return written

    def _urge_text(self, plan: PatrolPlan, period: Period, patrolled: bool,
                   seen: set[str]) -> str | None:
        """The 督办 for the period (`seen`: the planned places its patrols passed), or None
        when the plan was kept."""
        grid = self.cases.grids.get(plan.grid_code)
        words = {"grid": grid.name if grid else plan.grid_code,
                 "period": t(f"duty.period_{period.every}", month=period.start.month,
                             day=period.start.day),
                 "every": t(f"duty.every_{period.every}")}
        places = places_of(plan)
        if not patrolled:
            listed = "、".join(p.name for p in places) or t("duty.no_places")
            return t("duty.missed", **words, places=listed)
        missing = [p.name for p in places if p.name not in seen]
        if not missing:
            return None
        return t("duty.places_missed", **words, places="、".join(missing))

    async def run_forever(self, stop: asyncio.Event) -> None:
        await repeat(self.send_due, stop, CHECK_EVERY_S, log)
