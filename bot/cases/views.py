"""Reading cases and presenting them: a reporter's own cases, labels, the public view."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from bot.cases.context import CaseContext
from bot.cases.drafts import ReporterRef
from bot.models import AttachedReport, Case, Reporter
from bot.scope import Scope
from bot.texts import t
from bot.workflow import Status
from nlp.normalize import mask_personal

# Events the public and reporters see (in their own words, public.<action>); the rest —
# reminders, 督办, merges and splits — are internal.
PUBLIC_ACTIONS = ("report", "attach", "arrive", "on_spot", "rate")


def reporter_row(reporter: ReporterRef) -> Any:
    """SELECT the reporter's row id (empty when they never reported)."""
    return select(Reporter.id).where(Reporter.channel == reporter.channel,
                                     Reporter.external_id == reporter.external_id)


def visible_to(reporter: ReporterRef) -> Any:
    """Cases this person reported or whose report was attached to."""
    me = reporter_row(reporter)
    attached = select(AttachedReport.case_id).where(AttachedReport.reporter_id.in_(me))
    return or_(Case.reporter_id.in_(me), Case.id.in_(attached))


class CaseViews:
    def __init__(self, ctx: CaseContext) -> None:
        self.ctx = ctx

    # -- reading ----------------------------------------------------------------------------

    async def _seen_by(self, query: Any, reporter: ReporterRef) -> list[Case]:
        """The cases of `query` visible to the reporter, each marked with whether they are its
        first reporter (`viewer_owns`): a follower sees the status, not the first report."""
        query = query.where(visible_to(reporter)).add_columns(
            Case.reporter_id.in_(reporter_row(reporter)).label("own"))
        async with self.ctx.db.session() as session:
            rows = (await session.execute(query)).all()
        cases: list[Case] = []
        for row in rows:  # (indexed: mypy types an unpacked untyped row's items as object)
            case, own = row[0], row[1]
            case.viewer_owns = bool(own)
            cases.append(case)
        return cases

    async def for_reporter(self, reporter: ReporterRef, limit: int = 10) -> list[Case]:
        return await self._seen_by(select(Case).order_by(Case.id.desc()).limit(limit), reporter)

    async def get(self, number: str, reporter: ReporterRef | None = None) -> Case | None:
        """The case with its timeline; with `reporter`, only if that person reported it (or
        follows it: then `viewer_owns` is False)."""
        query = select(Case).where(Case.number == number).options(
            selectinload(Case.events), selectinload(Case.media)
        )
        if reporter is not None:
            found = await self._seen_by(query, reporter)
            return found[0] if found else None
        async with self.ctx.db.session() as session:
            return (await session.execute(query)).scalar_one_or_none()

    async def list(self, limit: int = 50, status: str | None = None) -> list[Case]:
        query = select(Case).order_by(Case.id.desc()).limit(limit)
        if status:
            query = query.where(Case.status == status)
        async with self.ctx.db.session() as session:
            return list((await session.execute(query)).scalars())

    # -- presenting -------------------------------------------------------------------------

    def local(self, moment: datetime | None) -> str:
        return moment.astimezone(self.ctx.tz).strftime("%Y-%m-%d %H:%M") if moment else ""

    @staticmethod
    def item_label(case: Case) -> str:
        return f"{case.big_class} › {case.item_name}"

    def assignee_label(self, assignee: str) -> str:
        scope = Scope.parse(assignee)
        if scope.is_area:
            area = self.ctx.grids.get(scope.ref)
            return area.name if area else scope.ref
        return scope.ref

    def public_view(self, case: Case, with_timeline: bool = True,
                    own: bool | None = None) -> dict[str, Any]:
        """What the reporter, or anyone allowed to see the case, gets: no reporter identity,
        no staff names, no internal notes. `own` False (a follower whose report was attached,
        or the public): the status only — never another reporter's words, address or photos.
        None: what `get`/`for_reporter` found about the viewer (the reporter by default)."""
        if own is None:
            own = getattr(case, "viewer_owns", True)
        grid = self.ctx.grids.get(case.grid_code)
        view: dict[str, Any] = {
            "number": case.number,
            "status": case.status,
            "status_label": t(f"status.{case.status}"),
            "item": {"code": case.item_code, "name": case.item_name,
                     "big_class": case.big_class, "label": self.item_label(case)},
            "department": case.department,
            "level": case.current_level,
            "assignee": self.assignee_label(case.assignee),
            "urgent": case.urgent,
            "grid": {"code": case.grid_code, "name": grid.name if grid else case.grid_code,
                     "leader": grid.leader if grid else None},
            "address": case.address if own else (grid.name if grid else ""),
            "location": None if case.lat is None else {"lat": case.lat, "lon": case.lon},
            "text": case.text if own else None,
            "own": own,
            "created_at": case.created_at.isoformat(),
            "response_due": case.response_due.isoformat() if case.response_due else None,
            "handling_due": case.handling_due.isoformat() if case.handling_due else None,
            "closed_at": case.closed_at.isoformat() if case.closed_at else None,
            "rating": case.rating,
        }
        if with_timeline:
            view["timeline"] = self.public_timeline(case)
            view["photos"] = len(case.media) if own else 0
        return view

    def public_timeline(self, case: Case) -> builtins.list[dict[str, Any]]:  # (not self.list)
        """The case's story in public words: what happened, never who inside did it nor
        internal notes (督办, reminders, merges). The handler's result note at 办结 is for the
        reporter: it is kept, masked."""
        entries = []
        for e in case.events:
            if e.to_status:  # a status change (older releases named them file, dispatch …)
                note = t(f"public.status.{e.to_status}")
                if e.to_status == Status.HANDLED and e.note and e.note != t("event.resolved"):
                    note = t("public.handled_with", note=mask_personal(e.note, plates=True))
                elif e.to_status == Status.REJECTED and case.merged_into:
                    note = t("public.merged", number=case.merged_into)
            elif e.action in PUBLIC_ACTIONS:
                note = t(f"public.{e.action}")
            else:
                continue
            entries.append({"at": e.at.isoformat(), "action": e.action, "status": e.to_status,
                            "status_label": t(f"status.{e.to_status}") if e.to_status else "",
                            "note": note})
        return entries
