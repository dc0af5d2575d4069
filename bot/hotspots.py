"""Hot spots among live cases (未诉先办): nlp.hotspots run on the recent cases one account may
see. The case text is stored masked, so nothing personal reaches the grouping; the case's
grid and address are places the algorithm is told, besides those it reads in the text.
Support is the number of later reports attached to a member (the same problem nearby, while
it was open) plus the cases merged into it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, true

from bot.cases import CaseDraft, CaseService, Filing, ReporterRef
from bot.grids import GridMap
from bot.models import AttachedReport, Case, Reporter
from bot.storage import Database
from bot.texts import t
from bot.workflow import Status
from nlp.hotspots import HotMessage, HotSpot, HotspotSettings, find_hotspots

HOTSPOT_REPORTER = "gridbot-hotspot:"  # the opaque reporter id of a case filed for a hot spot
MAX_NAMED = 50  # member numbers written into a hot spot's case text
MAX_CASES = 5000  # the newest this many in the window: the grouping stays within seconds


@dataclass(frozen=True)
class CaseFacts:
    number: str
    text: str
    created_at: datetime
    grid_code: str
    address: str
    item_code: str
    item_label: str
    department: str
    reporter_id: int | None
    lat: float | None
    lon: float | None


async def recent_cases(db: Database, since: datetime, until: datetime,
                       where: ColumnElement[bool] | None = None,
                       limit: int = MAX_CASES) -> tuple[list[CaseFacts], Counter[str]]:
    """Cases filed in [since, until) (not rejected, not merged away), newest first, and how
    many reports were attached or merged into each."""
    condition = where if where is not None else true()
    async with db.session() as session:
        rows: list[Any] = list((await session.execute(
            select(Case.number, Case.text, Case.created_at, Case.grid_code, Case.address,
                   Case.item_code, Case.big_class, Case.item_name, Case.department,
                   Case.reporter_id, Case.lat, Case.lon)
            .outerjoin(Reporter, Reporter.id == Case.reporter_id)
            .where(Case.created_at >= since, Case.created_at < until,
                   Case.status != Status.REJECTED, Case.merged_into.is_(None), condition,
                   # a hot spot's own case (file_hotspot_case) is not one more member of it
                   or_(Reporter.external_id.is_(None),
                       ~Reporter.external_id.startswith(HOTSPOT_REPORTER)))
            .order_by(Case.id.desc()).limit(limit))).all())
        merged = (await session.execute(
            select(Case.merged_into, func.count())
            .where(Case.merged_into.is_not(None), Case.created_at >= since, condition)
            .group_by(Case.merged_into))).all()
        attached = (await session.execute(
            select(Case.number, func.count(AttachedReport.id))
            .join(AttachedReport, AttachedReport.case_id == Case.id)
            .where(Case.created_at >= since, Case.created_at < until, condition)
            .group_by(Case.number))).all()
    facts = [CaseFacts(r[0], r[1], r[2], r[3], r[4], r[5], f"{r[6]} › {r[7]}", r[8], r[9],
                       r[10], r[11]) for r in rows]
    support: Counter[str] = Counter()
    for number, count in list(merged) + list(attached):
        support[str(number)] += int(count)
    return facts, support


def _grid_name(grids: GridMap, code: str) -> str:
    area = grids.get(code)
    return area.name if area else code


def spots_from_cases(cases: list[CaseFacts], merged: Counter[str], grids: GridMap,
                     now: datetime, settings: HotspotSettings | None = None,
                     gazetteer: Any = None) -> list[tuple[HotSpot, list[CaseFacts]]]:
    """The hot spots among `cases`, hottest first, each with its member cases."""
    base = settings or HotspotSettings()
    settings = HotspotSettings(**{**base.__dict__, "now": now, "window_days": min(
        base.window_days, 30.0)})
    messages = [HotMessage(
        id=c.number, text=c.text, time=c.created_at, support=merged.get(c.number, 0),
        reporter=f"r{c.reporter_id}" if c.reporter_id is not None else None,
        places=tuple(p for p in (_grid_name(grids, c.grid_code), c.address) if p),
        item=c.item_code) for c in cases]
    by_number = {c.number: c for c in cases}
    spots = find_hotspots(messages, settings, gazetteer=gazetteer)
    return [(s, [by_number[m] for m in s.members]) for s in spots]


def spot_view(rank: int, spot: HotSpot, members: list[CaseFacts],
              grids: GridMap) -> dict[str, Any]:
    """What the console shows of a hot spot: the JSON of `gridbot hotspots` plus the grid,
    item and department most members share, and a map point (the members' mean)."""
    view = spot.as_dict(rank)
    grid = Counter(c.grid_code for c in members).most_common(1)[0][0]
    located = [c for c in members if c.lat is not None and c.lon is not None]
    view |= {
        "grid": {"code": grid, "name": _grid_name(grids, grid)},
        "item_label": Counter(c.item_label for c in members).most_common(1)[0][0],
        "department": Counter(c.department for c in members).most_common(1)[0][0],
        "point": ({"lat": round(sum(c.lat or 0 for c in located) / len(located), 6),
                   "lon": round(sum(c.lon or 0 for c in located) / len(located), 6)}
                  if located else None),
    }
    return view


async def live_hotspots(db: Database, grids: GridMap, since: datetime, until: datetime,
                        where: ColumnElement[bool] | None = None, top: int = 10,
                        gazetteer: Any = None) -> list[dict[str, Any]]:
    """The `top` hot spots among the cases filed in [since, until) that `where` lets one
    see, as console views; heat is measured at `until`. The grouping runs in a worker
    thread (it is CPU work)."""
    cases, support = await recent_cases(db, since, until, where)
    if not cases:
        return []
    spots = await asyncio.to_thread(spots_from_cases, cases, support, grids, until,
                                    None, gazetteer)
    return [spot_view(rank, spot, members, grids)
            for rank, (spot, members) in enumerate(spots[:top], start=1)]


async def file_hotspot_case(cases: CaseService, view: dict[str, Any],
                            channel: str, key: str) -> Filing:
    """未诉先办: one new case for the hot spot's responsible department, its text naming the
    spot and every member case, in the grid most members are in (at their mean point). Never
    attached to a member: it is the whole, not one more report of a part."""
    members = list(view["members"])
    text = t("hotspot.case_text", description=view["description"],
             place=view["place"] or view["grid"]["name"], count=len(members),
             members="、".join(members[:MAX_NAMED]) + ("……" if len(members) > MAX_NAMED else ""))
    point = view.get("point") or {}
    draft = CaseDraft(text=text, item_code=view["item"], grid_code=view["grid"]["code"],
                      lat=point.get("lat"), lon=point.get("lon"),
                      address=(view["place"] or "")[:200])
    # The reporter is opaque (HOTSPOT_REPORTER + key): such cases stay out of later groupings.
    return await cases.file(draft, ReporterRef(channel, HOTSPOT_REPORTER + key),
                            attach_duplicates=False)
