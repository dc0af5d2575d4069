"""Which cases the public map shows: open ones and those closed in the last days, never a
rejected (不予受理) one — invalid or abusive reports are nobody's business — nor one merged
into another (the one it joined is shown). What of a case is shown is CaseService.public_view
with own=False (no reporter, no words, no photos, no staff), trimmed further by the page.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select

from bot.models import Case
from bot.storage import Database
from bot.workflow import OPEN, Status

RECENT_DAYS = 30  # "recently closed": closed within this many days
LIST_LIMIT = 200  # the newest this many in the list; the map counts them all
STATES = ("open", "closed", "all")


@dataclass(frozen=True)
class PublicFilter:
    state: str = "all"  # open | closed | all
    big_class: str = ""
    grid_code: str = ""

    @classmethod
    def read(cls, state: str, big_class: str, grid_code: str) -> PublicFilter:
        """From query parameters: anything unknown means "no filter", never an error."""
        return cls(state if state in STATES else "all", big_class.strip()[:64],
                   grid_code.strip()[:32])


def _shown(now: datetime, state: str) -> ColumnElement[bool]:
    is_open = Case.status.in_([s.value for s in OPEN])
    recently_closed = and_(Case.status == Status.CLOSED,
                           Case.closed_at >= now - timedelta(days=RECENT_DAYS))
    visible = and_(Case.merged_into.is_(None), Case.status != Status.REJECTED)
    if state == "open":
        return and_(visible, is_open)
    if state == "closed":
        return and_(visible, recently_closed)
    return and_(visible, or_(is_open, recently_closed))


def is_public(case: Case, now: datetime) -> bool:
    """The same rule as the list, for one case (a case page reached by its number)."""
    if case.merged_into or case.status == Status.REJECTED:
        return False
    if case.status == Status.CLOSED:
        return case.closed_at is not None and case.closed_at >= now - timedelta(days=RECENT_DAYS)
    return True


async def public_cases(db: Database, now: datetime, wanted: PublicFilter,
                       limit: int = LIST_LIMIT) -> tuple[list[Case], Counter[str], list[str]]:
    """(the newest matching cases, matching cases per grid code, the big classes shown)."""
    condition = _shown(now, wanted.state)
    narrowed = condition
    if wanted.big_class:
        narrowed = and_(narrowed, Case.big_class == wanted.big_class)
    listed = narrowed
    if wanted.grid_code:
        listed = and_(listed, Case.grid_code == wanted.grid_code)
    async with db.session() as session:
        cases = list((await session.execute(
            select(Case).where(listed).order_by(Case.id.desc()).limit(limit))).scalars())
        per_grid = (await session.execute(
            select(Case.grid_code, func.count()).where(narrowed).group_by(Case.grid_code))).all()
        classes = (await session.execute(
            select(Case.big_class).where(condition).distinct())).scalars().all()
    return cases, Counter({code: int(n) for code, n in per_grid}), sorted(classes)
