"""The figures every seed article reports: filed, on the spot, closure, on-time, level split,
handling time, satisfaction — for a period, overall or by grid / item / department / level.

Counted in the database: one GROUP BY over the period's cases joined to a per-case summary of
their events, so a month of a busy city costs one row per group, not one per case."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select, true

from bot.models import Case, CaseEvent, CaseRating
from bot.storage import Database
from bot.workflow import Status

GROUPINGS = {"grid": Case.grid_code, "item": Case.item_name, "department": Case.department,
             "level": Case.current_level}
LEVELS = ("grid", "street", "district")
# The counts each group's figures are made from, in the order the query returns them.
COUNTS = ("filed", "on_spot", "closed", "handled", "on_time", "escalated", "timed",
          "hours", "rated", "satisfied", *(f"closed_{lv}" for lv in LEVELS), "urges",
          "patrol_found")


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _figures(n: dict[str, float]) -> dict[str, Any]:
    return {
        "cases_filed": int(n["filed"]),
        "handled_on_the_spot": int(n["on_spot"]),
        "on_the_spot_share": _share(n["on_spot"], n["filed"]),
        "closed": int(n["closed"]),
        "closure_rate": _share(n["closed"], n["filed"]),
        # On time: first reported done (handled) by the handling deadline, of those handled.
        "on_time_rate": _share(n["on_time"], n["handled"]),
        "escalated": int(n["escalated"]),
        "solved_at": {lv: _share(n[f"closed_{lv}"], n["closed"]) for lv in LEVELS},
        "avg_handling_hours": round(n["hours"] / n["timed"], 2) if n["timed"] else None,
        "rated": int(n["rated"]),
        "satisfaction_rate": _share(n["satisfied"], n["rated"]),
        "satisfaction_counts": "the first rating of each closure (chat or 回访), 4–5 satisfied",
    }


def _hours_between(db: Database, start: Any, end: Any) -> Any:
    """(end - start) in hours, in SQL: the two databases spell date arithmetic differently."""
    if db.dialect == "postgresql":
        return func.extract("epoch", end - start) / 3600.0
    return (func.julianday(end) - func.julianday(start)) * 24.0


def chosen_cases(start: datetime, end: datetime,
                 where: ColumnElement[bool] | None = None) -> ColumnElement[bool]:
    """Cases filed in [start, end), narrowed by `where` (a `bot.staff.visible_cases`)."""
    return and_(Case.created_at >= start, Case.created_at < end,
                true() if where is None else where)


async def group_counts(db: Database, chosen: ColumnElement[bool], key: Any,
                       through: Any = None) -> dict[str, dict[str, float]]:
    """The raw counts (`COUNTS`) of the chosen cases per value of `key`. `through`: a
    subquery of (case_id, grp) pairs that puts one case in several groups (the workers who
    took it); `key` is then its `grp` column."""
    # Per case: was it solved on the spot, when was it first handled, was it ever escalated,
    # how often was it urged (督办: a person's or the deadline's).
    events = (
        select(CaseEvent.case_id.label("case_id"),
               func.max(case((CaseEvent.action == "on_spot", 1), else_=0)).label("on_spot"),
               func.min(case((CaseEvent.to_status == Status.HANDLED, CaseEvent.at)))
               .label("handled_at"),
               func.max(case((CaseEvent.to_status == Status.ESCALATED, 1), else_=0))
               .label("escalated"),
               func.sum(case((CaseEvent.action == "urge", 1), else_=0)).label("urges"))
        .where(CaseEvent.case_id.in_(select(Case.id).where(chosen)),
               CaseEvent.action.in_(["on_spot", "urge"])
               | CaseEvent.to_status.in_([Status.HANDLED, Status.ESCALATED]))
        .group_by(CaseEvent.case_id)
    ).subquery()
    # Satisfaction counts the first rating of each closure — chat or 回访, unhappy ones too
    # (a reopened case is rated again for its second closure).
    first = (select(func.min(CaseRating.id).label("id"))
             .where(CaseRating.case_id.in_(select(Case.id).where(chosen)))
             .group_by(CaseRating.case_id, CaseRating.closure)).subquery()
    ratings = (
        select(CaseRating.case_id.label("case_id"), func.count().label("rated"),
               func.sum(case((CaseRating.score >= 4, 1), else_=0)).label("satisfied"))
        .where(CaseRating.id.in_(select(first.c.id))).group_by(CaseRating.case_id)
    ).subquery()
    closed = Case.status == Status.CLOSED
    timed = and_(closed, Case.closed_at.is_not(None))

    def count(condition: ColumnElement[bool]) -> Any:
        return func.sum(case((condition, 1), else_=0))

    grp = key.label("grp")
    query = (
        select(grp, func.count(), func.sum(func.coalesce(events.c.on_spot, 0)), count(closed),
               count(events.c.handled_at.is_not(None)),
               count(and_(events.c.handled_at.is_not(None), Case.handling_due.is_not(None),
                          events.c.handled_at <= Case.handling_due)),
               func.sum(func.coalesce(events.c.escalated, 0)), count(timed),
               func.sum(case((timed, _hours_between(db, Case.created_at, Case.closed_at)),
                             else_=0.0)),
               func.sum(func.coalesce(ratings.c.rated, 0)),
               func.sum(func.coalesce(ratings.c.satisfied, 0)),
               *(count(and_(closed, Case.current_level == lv)) for lv in LEVELS),
               func.sum(func.coalesce(events.c.urges, 0)), count(Case.source == "patrol"))
        .select_from(Case)
    )
    if through is not None:
        query = query.join(through, through.c.case_id == Case.id)
    query = (query.outerjoin(events, events.c.case_id == Case.id)
             .outerjoin(ratings, ratings.c.case_id == Case.id)
             .where(chosen).group_by(grp))
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    return {str(row[0]): dict(zip(COUNTS, (float(v or 0) for v in row[1:]), strict=True))
            for row in rows}


async def case_stats(db: Database, start: datetime, end: datetime,
                     by: str | None = None,
                     where: ColumnElement[bool] | None = None) -> dict[str, Any]:
    """Cases filed in [start, end); with `by`, the same figures per group as well.
    `where` narrows the cases further (a console account's `bot.staff.visible_cases`)."""
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}")
    groups = await group_counts(db, chosen_cases(start, end, where),
                                GROUPINGS[by] if by else literal("all"))
    overall = {name: sum(g[name] for g in groups.values()) for name in COUNTS}
    result: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat(),
                              **_figures(overall)}
    if by:
        result["by"] = by
        result["groups"] = {g: _figures(n) for g, n in sorted(groups.items())}
    return result
