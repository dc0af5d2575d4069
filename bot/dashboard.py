"""The command centre's figures (看板) as plain data: for a period and for what one staff
account may see. The console draws them, exports them as CSV, and the monthly report prints
them.

The headline rates come from `bot.stats.case_stats`, so the dashboard, `gridbot stats` and
the report never disagree; the rest are aggregates computed in the database (GROUP BY), so a
busy city's month costs a handful of small result sets, not every case.

Coordinates: cases store WGS-84 (`bot.locator` converts GCJ-02 pins on the way in) and the
grid polygons are WGS-84 GeoJSON, so both are handed out as stored and line up on any map
drawn in WGS-84 (the console's own GeoJSON drawing, or OpenStreetMap-style tiles).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shapely.geometry import mapping
from sqlalchemy import ColumnElement, and_, case, func, or_, select, true

from bot.appraisal import UNITS, Appraisal
from bot.config import APPRAISAL_PARTS, AppraisalConfig
from bot.grids import GridMap
from bot.models import Case
from bot.periods import Period as Period
from bot.periods import PeriodError as PeriodError
from bot.scope import Scope
from bot.stats import case_stats
from bot.storage import Database
from bot.texts import t
from bot.workflow import OPEN, Status

FIGURES = ("summary", "daily", "categories", "items", "overdue", "departments", "grids",
           "points", "appraisal")
# Work still to be done by someone: these can run late. Handled and verified cases wait
# only for the check, so they are open but no longer overdue.
PENDING = frozenset({Status.REPORTED, Status.FILED, Status.DISPATCHED, Status.HANDLING,
                     Status.REOPENED, Status.ESCALATED})
OVERDUE_LIMIT = 20
POINTS_LIMIT = 5000  # the newest open cases on the map; older ones still count in the grids


def _rounded(value: Any) -> Any:
    """GeoJSON coordinates to 6 decimals (about 0.1 m): half the bytes, nothing visible lost."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class Dashboard:
    """The figures for one period as one account sees them (`where`: `visible_cases`;
    `grid_codes`: the grid cells whose polygons the account's map shows, None = all)."""

    db: Database
    grids: GridMap
    period: Period
    now: datetime
    where: ColumnElement[bool] = field(default_factory=true)
    grid_codes: frozenset[str] | None = None
    appraisal: AppraisalConfig = field(default_factory=AppraisalConfig)
    ranked: tuple[str, ...] = UNITS  # the units whose appraisal the account sees

    @property
    def _in_period(self) -> ColumnElement[bool]:
        return and_(Case.created_at >= self.period.start, Case.created_at < self.period.end,
                    self.where)

    async def figure(self, name: str) -> dict[str, Any]:
        if name not in FIGURES:
            raise KeyError(name)
        if name == "appraisal":
            return await self._appraisal()
        if name in ("summary", "departments"):
            stats = await self._stats()
            return self._summary(stats, await self._backlog()) if name == "summary" \
                else self._departments(stats)
        return await getattr(self, f"_{name}")()

    async def all(self, geometry: bool = True) -> dict[str, Any]:
        """Every figure at once (the page's refresh): the shared statistics are read once.
        `geometry=False` leaves the grid polygons out (null): a page that has them already
        refreshes only the counts — a real city's outlines are megabytes. The appraisal is
        not among them: the page fetches it apart, less often (`figure("appraisal")`)."""
        stats = await self._stats()
        return {
            "summary": self._summary(stats, await self._backlog()),
            "departments": self._departments(stats),
            "daily": await self._daily(),
            "categories": await self._categories(),
            "items": await self._items(),
            "overdue": await self._overdue(),
            "grids": await self._grids(geometry),
            "points": await self._points(),
        }

    # -- headline figures -----------------------------------------------------------------

    async def _stats(self) -> dict[str, Any]:
        return await case_stats(self.db, self.period.start, self.period.end, by="department",
                                where=self.where)

    async def _backlog(self) -> tuple[int, int]:
        """(open now, of those overdue now), whenever they were filed."""
        overdue = and_(Case.status.in_(list(PENDING)), Case.handling_due < self.now)
        async with self.db.session() as session:
            row = (await session.execute(
                select(func.count(), func.coalesce(func.sum(case((overdue, 1), else_=0)), 0))
                .where(Case.status.in_(list(OPEN)), self.where))).one()
        return int(row[0]), int(row[1])

    def _summary(self, stats: dict[str, Any], backlog: tuple[int, int]) -> dict[str, Any]:
        figures = {k: v for k, v in stats.items() if k not in ("by", "groups")}
        figures["from"] = self.period.first_day.isoformat()
        figures["to"] = self.period.last_day.isoformat()
        figures["open_now"], figures["overdue_now"] = backlog
        figures["as_of"] = self.now.isoformat()
        return figures

    def _departments(self, stats: dict[str, Any]) -> dict[str, Any]:
        """Ranked by on-time rate (departments with nothing handled yet last), then volume."""
        rows = [
            {"department": name, "cases_filed": g["cases_filed"], "closed": g["closed"],
             "closure_rate": g["closure_rate"], "on_time_rate": g["on_time_rate"],
             "satisfaction_rate": g["satisfaction_rate"],
             "avg_handling_hours": g["avg_handling_hours"]}
            for name, g in stats.get("groups", {}).items()
        ]
        rows.sort(key=lambda r: (r["on_time_rate"] is None, -(r["on_time_rate"] or 0),
                                 -r["cases_filed"], r["department"]))
        for rank, row in enumerate(rows, 1):
            row["rank"] = rank
        return {"departments": rows}

    # -- appraisal (考核) ------------------------------------------------------------------------

    async def _appraisal(self) -> dict[str, Any]:
        """Every unit's appraisal rows for the period, best first (`bot.appraisal`)."""
        appraisal = Appraisal(self.db, self.grids, self.period.start, self.period.end,
                              self.now, self.appraisal, self.where, self.grid_codes)
        units = {by: await appraisal.rows(by) for by in self.ranked}
        return {"weights": {p: round(w, 4) for p, w in self.appraisal.weights().items()},
                "units": units}

    # -- per day ----------------------------------------------------------------------------

    def _hour_bucket(self, column: Any) -> ColumnElement[str]:
        """The UTC hour of `column` as text 'YYYY-MM-DD HH' — the same on both databases.
        Local days are made from hours in Python, which stays exact for any zone whose offset
        is whole hours (China's is +8, with no summer time)."""
        if self.db.dialect == "postgresql":
            return func.to_char(column, "YYYY-MM-DD HH24")
        return func.strftime("%Y-%m-%d %H", column)

    async def _per_day(self, column: Any, condition: ColumnElement[bool]) -> dict[date, int]:
        bucket = self._hour_bucket(column).label("bucket")
        async with self.db.session() as session:
            rows = (await session.execute(
                select(bucket, func.count()).where(condition).group_by(bucket))).all()
        days: dict[date, int] = defaultdict(int)
        for hour, count in rows:
            moment = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
            days[moment.astimezone(self.period.tz).date()] += int(count)
        return days

    async def _daily(self) -> dict[str, Any]:
        filed = await self._per_day(Case.created_at, self._in_period)
        closed = await self._per_day(Case.closed_at, and_(
            Case.closed_at >= self.period.start, Case.closed_at < self.period.end,
            Case.status == Status.CLOSED, self.where))
        days = []
        day = self.period.first_day
        while day <= self.period.last_day:
            days.append({"date": day.isoformat(), "filed": filed.get(day, 0),
                         "closed": closed.get(day, 0)})
            day += timedelta(days=1)
        return {"days": days}

    # -- categories ---------------------------------------------------------------------------

    async def _counted(self, *keys: Any) -> list[tuple[Any, ...]]:
        async with self.db.session() as session:
            return [tuple(r) for r in (await session.execute(
                select(*keys, func.count().label("n")).where(self._in_period)
                .group_by(*keys).order_by(func.count().desc(), *keys))).all()]

    async def _categories(self) -> dict[str, Any]:
        rows = await self._counted(Case.big_class)
        total = sum(r[-1] for r in rows)
        return {"total": total, "big_classes": [
            {"big_class": big, "cases": n, "share": _share(n, total)} for big, n in rows]}

    async def _items(self) -> dict[str, Any]:
        rows = await self._counted(Case.big_class, Case.item_code, Case.item_name)
        total = sum(r[-1] for r in rows)
        return {"total": total, "items": [
            {"big_class": big, "item_code": code, "item": name, "cases": n,
             "share": _share(n, total)} for big, code, name, n in rows]}

    # -- what is late -------------------------------------------------------------------------

    async def _overdue(self) -> dict[str, Any]:
        """The open cases furthest past their handling deadline — the facts a supervisor
        chases with (never the reporter, never the complaint text, which may name people)."""
        async with self.db.session() as session:
            rows = (await session.execute(
                select(Case.number, Case.big_class, Case.item_name, Case.grid_code,
                       Case.department, Case.current_level, Case.status, Case.handling_due)
                .where(Case.status.in_(list(PENDING)), Case.handling_due < self.now,
                       self.where)
                .order_by(Case.handling_due, Case.id).limit(OVERDUE_LIMIT))).all()
        cases = []
        for number, big, item, grid_code, department, level, status, due in rows:
            assert due is not None  # `handling_due < now` is never true of NULL
            grid = self.grids.get(grid_code)
            cases.append({
                "number": number, "item": f"{big} › {item}", "grid_code": grid_code,
                "grid": grid.name if grid else grid_code, "department": department,
                "level": level, "status": status, "status_label": t(f"status.{status}"),
                "due": due.isoformat(),
                # The deadline as the city reads it (the JSON's `due` is UTC).
                "due_local": due.astimezone(self.period.tz).strftime("%Y-%m-%d %H:%M"),
                "hours_overdue": round((self.now - due).total_seconds() / 3600, 1),
            })
        return {"as_of": self.now.isoformat(), "cases": cases}

    # -- the map ------------------------------------------------------------------------------

    async def _grids(self, geometry: bool = True) -> dict[str, Any]:
        """The grid polygons as GeoJSON, each with its open and overdue cases now and the
        cases filed in the period — what the map colours by."""
        is_open = Case.status.in_(list(OPEN))
        late = and_(Case.status.in_(list(PENDING)), Case.handling_due < self.now)
        filed = and_(Case.created_at >= self.period.start, Case.created_at < self.period.end)
        async with self.db.session() as session:
            rows = (await session.execute(
                select(Case.grid_code,
                       func.sum(case((is_open, 1), else_=0)),
                       func.sum(case((late, 1), else_=0)),
                       func.sum(case((filed, 1), else_=0)))
                .where(or_(is_open, filed), self.where).group_by(Case.grid_code))).all()
        counts = {code: (int(o or 0), int(d or 0), int(f or 0)) for code, o, d, f in rows}
        features = []
        for grid in self.grids.grids:
            if self.grid_codes is not None and grid.code not in self.grid_codes:
                continue
            open_now, overdue, filed_n = counts.get(grid.code, (0, 0, 0))
            street = self.grids.at_level(grid.code, "street")
            features.append({
                "type": "Feature",
                "geometry": _rounded(mapping(grid.geometry)) if geometry else None,
                "properties": {
                    "code": grid.code, "name": grid.name,
                    "street": street.name if street else "",
                    "open": open_now, "overdue": overdue,
                    "overdue_rate": _share(overdue, open_now), "filed": filed_n,
                },
            })
        return {"type": "FeatureCollection", "features": features}

    async def _points(self) -> dict[str, Any]:
        """Open cases with a location, newest first (WGS-84, as stored)."""
        late = and_(Case.status.in_(list(PENDING)), Case.handling_due < self.now)
        is_late: ColumnElement[bool] = case((late, True), else_=False)
        async with self.db.session() as session:
            rows = (await session.execute(
                select(Case.number, Case.big_class, Case.item_name, Case.status, Case.grid_code,
                       Case.lat, Case.lon, is_late)
                .where(Case.status.in_(list(OPEN)), Case.lat.is_not(None),
                       Case.lon.is_not(None), self.where)
                .order_by(Case.id.desc()).limit(POINTS_LIMIT))).all()
        points = []
        for number, big, item, status, grid_code, lat, lon, overdue in rows:
            assert lat is not None and lon is not None  # the query keeps located cases only
            points.append(
                {"number": number, "item": f"{big} › {item}", "status": status,
                 "status_label": t(f"status.{status}"), "grid_code": grid_code,
                 "lat": round(lat, 6), "lon": round(lon, 6), "overdue": bool(overdue)})
        return {"points": points}


# -- tables: the same figures as rows, for CSV and the report ---------------------------------

def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def table(name: str, data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(column headings, rows) of one figure, headings from the message catalogue."""
    if name == "summary":
        keys = ["cases_filed", "closed", "closure_rate", "on_time_rate", "satisfaction_rate",
                "on_the_spot_share", "handled_on_the_spot", "escalated", "avg_handling_hours",
                "rated", "open_now", "overdue_now"]
        rows: list[list[Any]] = [[t("dashboard.col.from"), data["from"]],
                                 [t("dashboard.col.to"), data["to"]]]
        for key in keys:
            value = data.get(key)
            rows.append([t(f"dashboard.fig.{key}"),
                         _pct(value) if key.endswith(("_rate", "_share")) else
                         ("" if value is None else value)])
        for level, value in data["solved_at"].items():
            rows.append([t(f"dashboard.fig.solved_at_{level}"), _pct(value)])
        return [t("dashboard.col.figure"), t("dashboard.col.value")], rows
    if name == "appraisal":
        return _appraisal_table(data)
    columns = {
        "daily": ("days", ["date", "filed", "closed"]),
        "categories": ("big_classes", ["big_class", "cases", "share"]),
        "items": ("items", ["big_class", "item_code", "item", "cases", "share"]),
        "overdue": ("cases", ["number", "item", "grid", "department", "status_label",
                              "due_local", "hours_overdue"]),
        "departments": ("departments", ["rank", "department", "cases_filed", "closed",
                                        "closure_rate", "on_time_rate", "satisfaction_rate",
                                        "avg_handling_hours"]),
        "points": ("points", ["number", "item", "status_label", "grid_code", "lat", "lon",
                              "overdue"]),
    }
    if name == "grids":
        keys = ["code", "name", "street", "open", "overdue", "overdue_rate", "filed"]
        items = [f["properties"] for f in data["features"]]
    elif name in columns:
        list_key, keys = columns[name]
        items = data[list_key]
    else:
        raise KeyError(name)

    def cell(key: str, value: Any) -> Any:
        if key.endswith(("_rate", "share")):
            return _pct(value)
        if isinstance(value, bool):
            return t("dashboard.yes") if value else t("dashboard.no")
        return "" if value is None else value

    return ([t(f"dashboard.col.{k}") for k in keys],
            [[cell(k, item.get(k)) for k in keys] for item in items])


def _appraisal_table(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Every unit's rows: unit, rank, name, score, then each part's score and figure."""
    header = [t("dashboard.appraisal.col.unit"), t("dashboard.appraisal.col.rank"),
              t("dashboard.appraisal.col.name"), t("dashboard.appraisal.col.score")]
    for part in APPRAISAL_PARTS:
        name = t(f"dashboard.appraisal.part.{part}")
        header += [name, f"{name} · {t('dashboard.appraisal.col.value')}"]
    rows: list[list[Any]] = []
    for by, unit_rows in data["units"].items():
        for row in unit_rows:
            cells: list[Any] = [t(f"dashboard.appraisal.unit.{by}"), row["rank"], row["name"],
                                "" if row["score"] is None else row["score"]]
            for part in APPRAISAL_PARTS:
                figure = row["parts"][part]
                cells += ["" if figure["score"] is None else figure["score"],
                          "" if figure["value"] is None else figure["value"]]
            rows.append(cells)
    return header, rows


def ranked_units(role: str) -> tuple[str, ...]:
    """Whose appraisal a console account sees: a department account its department's only
    (grid workers' patrols are not its business); everyone else every unit, narrowed to
    what their scope shows."""
    return ("department",) if role == "department" else UNITS


def visible_grid_codes(role: str, scope: str, grids: GridMap) -> frozenset[str] | None:
    """The grid cells a console account's map shows: a grid leader's own area; everyone
    else the whole city (a department's cases can be anywhere). None = every grid."""
    area = Scope.parse(scope)
    if role != "grid_leader" or not area.is_area:
        return None
    return frozenset(g.code for g in grids.grids
                     if area.ref in {a.code for a in grids.ancestors(g.code)})
