"""The figures every seed article reports: filed, on the spot, closure, on-time, level split,
handling time, satisfaction — for a period, overall or by grid / item / department / level."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from bot.models import Case, CaseEvent
from bot.storage import Database
from bot.workflow import Status

GROUPINGS = {"grid": Case.grid_code, "item": Case.item_name, "department": Case.department,
             "level": Case.current_level}


@dataclass
class _Row:
    status: str
    level: str
    created: datetime
    closed: datetime | None
    due: datetime | None
    rating: int | None
    on_spot: bool
    handled_at: datetime | None
    escalated: bool


def _figures(rows: list[_Row]) -> dict[str, Any]:
    filed = len(rows)
    closed = [r for r in rows if r.status == Status.CLOSED]
    handled = [r for r in rows if r.handled_at is not None]
    rated = [r for r in rows if r.rating is not None]
    by_level = defaultdict(int)
    for r in closed:
        by_level[r.level] += 1
    hours = [(r.closed - r.created).total_seconds() / 3600 for r in closed if r.closed]

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        "cases_filed": filed,
        "handled_on_the_spot": sum(r.on_spot for r in rows),
        "on_the_spot_share": share(sum(r.on_spot for r in rows), filed),
        "closed": len(closed),
        "closure_rate": share(len(closed), filed),
        "on_time_rate": share(sum(1 for r in handled if r.due and r.handled_at <= r.due),
                              len(handled)),
        "escalated": sum(r.escalated for r in rows),
        "solved_at": {lv: share(by_level[lv], len(closed))
                      for lv in ("grid", "street", "district")},
        "avg_handling_hours": round(sum(hours) / len(hours), 2) if hours else None,
        "rated": len(rated),
        "satisfaction_rate": share(sum(1 for r in rated if r.rating >= 4), len(rated)),
    }


async def case_stats(db: Database, start: datetime, end: datetime,
                     by: str | None = None) -> dict[str, Any]:
    """Cases filed in [start, end); with `by`, the same figures per group as well."""
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}")
    key = GROUPINGS[by] if by else Case.current_level
    async with db.session() as session:
        cases = (await session.execute(
            select(Case.id, Case.status, Case.current_level, Case.created_at, Case.closed_at,
                   Case.handling_due, Case.rating, key)
            .where(Case.created_at >= start, Case.created_at < end)
        )).all()
        ids = [c[0] for c in cases]
        events: dict[int, dict[str, Any]] = defaultdict(dict)
        if ids:
            # Per case: was it solved on the spot, when was it first handled, was it escalated.
            rows = await session.execute(
                select(CaseEvent.case_id, CaseEvent.action, CaseEvent.to_status,
                       func.min(CaseEvent.at))
                .where(CaseEvent.case_id.in_(ids),
                       (CaseEvent.action == "on_spot")
                       | CaseEvent.to_status.in_([Status.HANDLED, Status.ESCALATED]))
                .group_by(CaseEvent.case_id, CaseEvent.action, CaseEvent.to_status))
            for case_id, action, to_status, at in rows.all():
                events[case_id][action if action == "on_spot" else to_status] = at
    groups: dict[str, list[_Row]] = defaultdict(list)
    everything: list[_Row] = []
    for cid, status, level, created, closed, due, rating, group in cases:
        e = events.get(cid, {})
        row = _Row(status, level, created, closed, due, rating, "on_spot" in e,
                   e.get(Status.HANDLED), Status.ESCALATED in e)
        everything.append(row)
        groups[str(group)].append(row)
    result: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat(),
                              **_figures(everything)}
    if by:
        result["by"] = by
        result["groups"] = {g: _figures(rs) for g, rs in sorted(groups.items())}
    return result
