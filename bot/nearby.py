"""Open cases near a point, shown to a citizen before they file (「是这个吗？」, as
FixMyStreet does), and following one of them instead of filing a new case.

Read-only but for `follow`, which joins the citizen's report to the chosen case the way
filing joins a duplicate (CaseService's own attach: the same rows, event and media).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases import CaseDraft, CaseNotFound, CaseService, ReporterRef, distance_m
from bot.cases.drafts import near_terms
from bot.models import Case
from bot.workflow import OPEN, Status

MAX_NEARBY = 5


class NotFollowable(Exception):
    """The case is closed or rejected by now, or of another kind: file a new one."""


@dataclass(frozen=True)
class Nearby:
    case: Case
    distance_m: float


async def open_cases_near(cases: CaseService, item_code: str, lat: float, lon: float,
                          radius_m: float, limit: int = MAX_NEARBY) -> list[Nearby]:
    """Open cases of the item within `radius_m` of the (WGS-84) point, nearest first."""
    if radius_m <= 0:
        return []
    query = select(Case).where(
        Case.item_code == item_code,
        Case.status.in_([s.value for s in OPEN]),
        Case.merged_into.is_(None),
        *near_terms(lat, lon, radius_m),
    ).order_by(Case.id.desc()).limit(200)
    async with cases.db.session() as session:
        rows = list((await session.execute(query)).scalars())
    near = [Nearby(c, distance_m(lat, lon, c.lat, c.lon)) for c in rows
            if c.lat is not None and c.lon is not None]
    near = [n for n in near if n.distance_m <= radius_m]
    near.sort(key=lambda n: (n.distance_m, -n.case.id))
    return near[:limit]


async def follow(cases: CaseService, number: str, draft: CaseDraft,
                 reporter: ReporterRef) -> Case:
    """Join the citizen's report (words, place, photos) to the open case `number`: they
    follow it from now on (every update, no rating). CaseNotFound, or NotFollowable when
    the case is no longer open or is of another item."""

    async def join(session: AsyncSession, case: Case, now: datetime) -> None:
        if Status(case.status) not in OPEN or case.merged_into:
            raise NotFollowable(number)
        if case.item_code != draft.item_code:
            raise NotFollowable(number)
        # The attach filing does for a duplicate (the filing part owns those rows).
        await cases.filing.attach_report(session, case, draft, reporter, now)

    case = await cases.locked(number, join)
    case.viewer_owns = False
    return case


__all__ = ["CaseNotFound", "Nearby", "NotFollowable", "follow", "open_cases_near"]
