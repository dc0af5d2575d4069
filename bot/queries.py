"""Small read-only questions the channels ask about cases (no state changes here)."""

from __future__ import annotations

from sqlalchemy import select

from bot.actions import ActionRefused
from bot.models import Case, Worker
from bot.storage import Database
from bot.teams import Teams
from bot.texts import t
from bot.workflow import ACTIONS, OPEN, Status


async def open_cases_of_grid(db: Database, grid_code: str, limit: int = 20) -> list[Case]:
    """The grid's cases not yet closed or rejected, the nearest deadline first."""
    async with db.session() as session:
        rows = await session.execute(
            select(Case).where(Case.grid_code == grid_code,
                               Case.status.in_([s.value for s in OPEN]))
            .order_by(Case.handling_due.asc(), Case.id.asc()).limit(limit))
        return list(rows.scalars())


async def refusal_before_prompt(db: Database, teams: Teams, number: str,
                                worker: Worker | None,
                                action: str = "give_back") -> ActionRefused | None:
    """Would `action` (resolve / give_back) be refused right now? Asked before prompting a
    worker for a note, so that an outsider or a stale button gets its answer at once; the
    action itself checks again under the case lock (WorkerActions has the last word)."""
    async with db.session() as session:
        case = (await session.execute(select(Case).where(Case.number == number))).scalar()
    if case is None:
        return ActionRefused("not_found", number=number)
    if not teams.may_act(worker, case):
        return ActionRefused("not_yours", number=case.number)
    if case.status not in ACTIONS[action].allowed:
        return ActionRefused("moved_on", number=case.number, status=t(f"status.{case.status}"))
    on_spot_ok = case.handling_level == "grid" and worker is not None \
        and worker.scope == f"grid:{case.grid_code}"
    if action == "resolve" and case.status == Status.DISPATCHED and not on_spot_ok:
        return ActionRefused("accept_first", number=case.number)  # as WorkerActions.resolve
    return None
