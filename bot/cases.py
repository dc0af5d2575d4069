"""Filing cases and moving them through the workflow, with the audit trail and the outbox."""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.catalogue import Catalogue, CatalogueItem
from bot.config import CasesConfig
from bot.grids import GridMap
from bot.models import (
    AttachedReport,
    Case,
    CaseCounter,
    CaseEvent,
    CaseMedia,
    CaseTimer,
    OutboxMessage,
    Reporter,
)
from bot.storage import Database
from bot.teams import Teams
from bot.texts import t
from bot.workflow import OPEN, Status, TransitionError, check_transition
from bot.worktime import WorkCalendar

Clock = Callable[[], datetime]
REMIND_AT = (0.5, 0.8)  # shares of the handling time at which the assignee is reminded
NEXT_LEVEL = {"grid": "street", "street": "district"}


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReporterRef:
    channel: str
    external_id: str
    phone: str | None = None


@dataclass
class CaseDraft:
    text: str
    item_code: str
    grid_code: str
    lat: float | None = None
    lon: float | None = None
    address: str = ""
    media: list[str] = field(default_factory=list)
    confidence: float | None = None


@dataclass(frozen=True)
class Filing:
    case: Case
    attached: bool  # True: an open case of the same problem nearby took this report


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in metres: plenty precise at a city's scale."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


class CaseNotFound(Exception):
    pass


class RatingRefused(Exception):
    """Only a closed, not yet rated case can be rated."""


class CaseService:
    def __init__(
        self,
        db: Database,
        catalogue: Catalogue,
        grids: GridMap,
        calendar: WorkCalendar,
        config: CasesConfig,
        teams: Teams,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.catalogue = catalogue
        self.grids = grids
        self.calendar = calendar
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        self.teams = teams
        self.clock = clock

    # -- filing ---------------------------------------------------------------------------

    def dispatch_target(self, item: CatalogueItem, grid_code: str) -> tuple[str, str]:
        """(level, assignee): small matters stay in the grid, ordinary ones go to the street,
        big ones to the district department responsible for the item."""
        if item.level == "grid":
            return "grid", f"grid:{grid_code}"
        if item.level == "street":
            street = self.grids.at_level(grid_code, "street")
            return "street", f"street:{street.code if street else grid_code}"
        return "district", f"department:{item.department}"

    async def file(self, draft: CaseDraft, reporter: ReporterRef,
                   attach_duplicates: bool = True) -> Filing:
        """File a new case, or attach the report to an open case of the same item nearby."""
        item = self.catalogue.get(draft.item_code)
        grid = self.grids.get(draft.grid_code)
        if grid is None:
            raise ValueError(f"unknown grid {draft.grid_code}")
        now = self.clock()
        level, assignee = self.dispatch_target(item, grid.code)
        number = await self._number_up_front(draft, now)
        async with self.db.session() as session, session.begin():
            reporter_row = await self._reporter(session, reporter, now)
            duplicate = (await self._open_duplicate(session, draft, now)
                         if attach_duplicates else None)
            if duplicate is not None:
                await self._attach(session, duplicate, draft, reporter_row, now)
                return Filing(duplicate, attached=True)
            case = Case(
                number=number or await self._next_number(session, now),
                status=Status.REPORTED,
                item_code=item.code, item_name=item.name, big_class=item.big_class,
                department=item.department, handling_level=item.level, current_level=level,
                assignee="", urgent=item.urgent, text=draft.text, address=draft.address,
                lat=draft.lat, lon=draft.lon, grid_code=grid.code, channel=reporter.channel,
                reporter_id=reporter_row.id, classifier_confidence=draft.confidence,
                created_at=now, updated_at=now,
                response_due=self.calendar.add(now, item.response),
                handling_due=self.calendar.add(now, item.handling),
                reopen_count=0,
            )
            session.add(case)
            await session.flush()
            self.event(session, case, "citizen", "report", None, Status.REPORTED, now)
            self._add_media(session, case, draft.media, now)
            # The reporter hears about filing in the reply to their confirmation, not twice.
            await self.move(session, case, Status.FILED, "system", t("event.auto_filed"), now,
                             tell_reporter=False)
            case.assignee = assignee
            await self.move(session, case, Status.DISPATCHED, "system",
                             t("event.dispatched", target=self.assignee_label(assignee)), now,
                             tell_reporter=False)
        return Filing(case, attached=False)

    def _add_media(self, session: AsyncSession, case: Case, refs: list[str],
                   now: datetime) -> None:
        for ref in refs:
            session.add(CaseMedia(case_id=case.id, kind="photo", ref=ref, added_by="citizen",
                                  created_at=now))

    async def _open_duplicate(self, session: AsyncSession, draft: CaseDraft,
                              now: datetime, lock: bool = True) -> Case | None:
        """The nearest open case of the same item within the configured distance and time."""
        radius = self.config.duplicate_radius_m
        if draft.lat is None or draft.lon is None or radius <= 0:
            return None
        d_lat = radius / 111_320
        d_lon = d_lat / max(math.cos(math.radians(draft.lat)), 0.01)
        query = select(Case).where(
            Case.item_code == draft.item_code,
            Case.status.in_([s.value for s in OPEN]),
            Case.created_at >= now - timedelta(hours=self.config.duplicate_window_h),
            Case.lat.between(draft.lat - d_lat, draft.lat + d_lat),
            Case.lon.between(draft.lon - d_lon, draft.lon + d_lon),
        )
        rows = (await session.execute(query.with_for_update() if lock else query)).scalars().all()
        near = [(distance_m(draft.lat, draft.lon, c.lat, c.lon), c.id, c) for c in rows]
        near = [n for n in near if n[0] <= radius]
        return min(near)[2] if near else None

    async def _attach(self, session: AsyncSession, case: Case, draft: CaseDraft,
                      reporter: Reporter, now: datetime) -> None:
        already = case.reporter_id == reporter.id or (await session.execute(
            select(AttachedReport.id).where(AttachedReport.case_id == case.id,
                                            AttachedReport.reporter_id == reporter.id)
        )).first() is not None
        if not already:
            session.add(AttachedReport(
                case_id=case.id, reporter_id=reporter.id, channel=reporter.channel,
                text=draft.text, address=draft.address, lat=draft.lat, lon=draft.lon,
                grid_code=draft.grid_code, created_at=now))
        self.event(session, case, "citizen", "attach", None, None, now,
                    t("event.attached", text=draft.text[:60]))
        self._add_media(session, case, draft.media, now)
        case.updated_at = now

    async def _reporter(self, session: AsyncSession, ref: ReporterRef, now: datetime) -> Reporter:
        row = (await session.execute(
            select(Reporter).where(Reporter.channel == ref.channel,
                                   Reporter.external_id == ref.external_id)
        )).scalar_one_or_none()
        if row is None:
            row = Reporter(channel=ref.channel, external_id=ref.external_id, phone=ref.phone,
                           created_at=now)
            session.add(row)
            await session.flush()
        return row

    async def _number_up_front(self, draft: CaseDraft, now: datetime) -> str | None:
        """On PostgreSQL, take the case number in a short transaction of its own, before the
        filing's: holding the day's counter row for a whole filing would make every filing
        in the city wait for the one before it. Skipped when the report will probably join
        an open case (so numbers are rarely wasted); SQLite has one writer anyway."""
        if self.db.dialect != "postgresql":
            return None
        async with self.db.session() as session:  # a read: no locks held
            if await self._open_duplicate(session, draft, now, lock=False) is not None:
                return None
        async with self.db.session() as session, session.begin():
            return await self._next_number(session, now)

    async def _next_number(self, session: AsyncSession, now: datetime) -> str:
        """Per-day sequence; the upsert locks the day's row, so concurrent filings never clash."""
        day = now.astimezone(self.tz).strftime("%Y%m%d")
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        stmt = insert(CaseCounter).values(day=day, value=1).on_conflict_do_update(
            index_elements=["day"], set_={"value": CaseCounter.value + 1}
        ).returning(CaseCounter.value)
        value = (await session.execute(stmt)).scalar_one()
        return f"{self.config.number_prefix}{day}-{value:04d}"

    # -- moving -----------------------------------------------------------------------------

    def event(self, session: AsyncSession, case: Case, actor: str, action: str,
               old: str | None, new: str | None, now: datetime, note: str = "") -> CaseEvent:
        event = CaseEvent(case_id=case.id, at=now, actor=actor, action=action,
                          from_status=old, to_status=new, note=note)
        session.add(event)
        return event

    async def move(self, session: AsyncSession, case: Case, new: Status, actor: str,
                    note: str, now: datetime, tell_reporter: bool = True) -> CaseEvent:
        check_transition(case.status, new)
        old = case.status
        case.status = new
        case.updated_at = now
        if new == Status.CLOSED:
            case.closed_at = now
        if new == Status.DISPATCHED and old != Status.FILED and case.item_code in self.catalogue:
            # Every (re-)dispatch gives the new assignee the item's full handling time.
            case.handling_due = self.calendar.add(now, self.catalogue.get(case.item_code).handling)
        event = self.event(session, case, actor, "transition", old, new, now, note)
        if new != Status.HANDLING:  # accepting does not stop the clock
            # A case only gets timers once dispatched: nothing to cancel before that.
            await self._reset_timers(session, case, now,
                                     cancel=old not in (Status.REPORTED, Status.FILED))
        await self._notify_for(session, case, now, tell_reporter)
        return event

    async def _reset_timers(self, session: AsyncSession, case: Case, now: datetime,
                            cancel: bool = True) -> None:
        """Cancel what is pending; a dispatched case gets reminders and its escalation."""
        if cancel:
            await session.execute(
                update(CaseTimer).where(CaseTimer.case_id == case.id,
                                        CaseTimer.done_at.is_(None))
                .values(done_at=now, outcome="cancelled")
            )
        if case.status != Status.DISPATCHED or case.handling_due is None:
            return
        span = case.handling_due - now
        for share in REMIND_AT:
            session.add(CaseTimer(case_id=case.id, kind="remind", level=case.current_level,
                                  due_at=now + span * share, created_at=now, outcome=""))
        session.add(CaseTimer(case_id=case.id, kind="escalate", level=case.current_level,
                              due_at=case.handling_due, created_at=now, outcome=""))

    async def fire_timer(self, session: AsyncSession, case: Case, timer: CaseTimer,
                         now: datetime) -> None:
        """Run one due timer inside the runner's transaction (case row already locked)."""
        if case.status not in (Status.DISPATCHED, Status.HANDLING):
            return  # the case moved on; nothing to urge
        target = self.assignee_label(case.assignee)
        if timer.kind == "remind":
            self.event(session, case, "system", "remind", None, None, now,
                       t("event.reminded", due=self.local(case.handling_due)))
            await self.notify_to(session, case, now, case.assignee, t(
                "group.reminder", number=case.number, item=self.item_label(case),
                due=self.local(case.handling_due), target=target))
            return
        if case.current_level not in NEXT_LEVEL:  # at the district: urge (督办), no higher level
            self.event(session, case, "system", "urge", None, None, now,
                       t("event.overdue_district"))
            await self.notify_to(session, case, now, case.assignee, t(
                "group.overdue", number=case.number, item=self.item_label(case), target=target))
            return
        await self.escalate(session, case, now, "system", t("event.escalated", target=target))

    async def escalate(self, session: AsyncSession, case: Case, now: datetime, actor: str,
                       note: str) -> bool:
        """Hand the case up one level (grid → street → district), telling the level below.
        False when it is already at the top."""
        upper = NEXT_LEVEL.get(case.current_level)
        if upper is None:
            return False
        below = case.assignee
        await self.move(session, case, Status.ESCALATED, actor, note, now)
        await self.notify_to(session, case, now, below, t(
            "group.escalated_notice", number=case.number, item=self.item_label(case)))
        case.current_level = upper
        case.assignee = self._assignee_at(case, upper)
        await self.move(session, case, Status.DISPATCHED, "system",
                         t("event.dispatched", target=self.assignee_label(case.assignee)), now,
                         tell_reporter=False)
        return True

    def _assignee_at(self, case: Case, level: str) -> str:
        if level == "street":
            street = self.grids.at_level(case.grid_code, "street")
            return f"street:{street.code if street else case.grid_code}"
        return f"department:{case.department}"

    async def transition(self, number: str, new: Status, actor: str, note: str = "",
                         assignee: str | None = None) -> Case:
        async def move(session: AsyncSession, case: Case, now: datetime) -> None:
            if assignee is not None:
                case.assignee = assignee
            await self.move(session, case, new, actor, note, now)

        return await self.locked(number, move)

    async def locked(self, number: str,
                     work: Callable[[AsyncSession, Case, datetime], Awaitable[Any]]) -> Case:
        """Run `work` on the case in one transaction with the case row locked, so two people
        acting at once are served one after the other (and the second sees the first's
        change)."""
        async with self.db.serialised(), self.db.session() as session, session.begin():
            case = (await session.execute(
                select(Case).where(Case.number == number).with_for_update()
            )).scalar_one_or_none()
            if case is None:
                raise CaseNotFound(number)
            await work(session, case, self.clock())
        return case

    async def rate(self, number: str, reporter: ReporterRef, score: int, note: str = "") -> Case:
        """The reporter's 1–5 rating of a closed case; 1–2 reopens it once (back to the level
        that handled it, which is told)."""
        if not 1 <= score <= 5:
            raise ValueError("a rating is 1 to 5")
        now = self.clock()
        async with self.db.session() as session, session.begin():
            case = (await session.execute(
                select(Case).where(Case.number == number, self._visible_to(reporter))
                .with_for_update()
            )).scalar_one_or_none()
            if case is None:
                raise CaseNotFound(number)
            if case.status != Status.CLOSED or case.rating is not None:
                raise RatingRefused(case.status)
            case.rating = score
            self.event(session, case, "citizen", "rate", None, None, now,
                        t("event.rated", score=score, note=note))
            if score <= 2 and case.reopen_count == 0:
                case.reopen_count += 1
                case.rating = None  # the rating that counts is the one after the second try
                await self.move(session, case, Status.REOPENED, "citizen",
                                t("event.reopened", score=score), now)
                await self.notify_to(session, case, now, case.assignee, t(
                    "group.reopened", number=case.number, item=self.item_label(case),
                    score=score, note=note or "-"))
                await self.move(session, case, Status.DISPATCHED, "system",
                                 t("event.redispatched"), now, tell_reporter=False)
        return case

    async def merge(self, source_number: str, target_number: str, actor: str,
                    reason: str) -> Case:
        """Staff found two cases to be one problem: the source's reports join the target (its
        reporters follow the target from now on) and the source is closed as merged."""
        if source_number == target_number:
            raise ValueError("a case cannot be merged into itself")
        now = self.clock()
        async with self.db.serialised(), self.db.session() as session, session.begin():
            cases = {c.number: c for c in (await session.execute(
                select(Case).where(Case.number.in_([source_number, target_number]))
                .order_by(Case.id).with_for_update())).scalars()}
            source, target = cases.get(source_number), cases.get(target_number)
            if source is None or target is None:
                raise CaseNotFound(source_number if source is None else target_number)
            for case in (source, target):
                if case.status not in OPEN:
                    raise TransitionError(case.status, "merged")
            followers = [(source.reporter_id, source.channel, source.text, source.address,
                          source.lat, source.lon, source.grid_code)]
            moved = (await session.execute(select(AttachedReport).where(
                AttachedReport.case_id == source.id))).scalars().all()
            followers += [(a.reporter_id, a.channel, a.text, a.address, a.lat, a.lon,
                           a.grid_code) for a in moved]
            for row in moved:
                await session.delete(row)
            await session.flush()
            known = {target.reporter_id} | set((await session.execute(
                select(AttachedReport.reporter_id).where(
                    AttachedReport.case_id == target.id))).scalars())
            for reporter_id, channel, text, address, lat, lon, grid_code in followers:
                if reporter_id in known:
                    continue
                known.add(reporter_id)
                session.add(AttachedReport(
                    case_id=target.id, reporter_id=reporter_id, channel=channel, text=text,
                    address=address, lat=lat, lon=lon, grid_code=grid_code, created_at=now))
            await session.execute(update(CaseMedia).where(CaseMedia.case_id == source.id)
                                  .values(case_id=target.id))
            source.merged_into = target.number
            self.event(session, target, actor, "merge", None, None, now,
                       t("event.merged_from", number=source.number, reason=reason))
            await self.move(session, source, Status.REJECTED, actor,
                            t("event.merged_into", number=target.number, reason=reason), now,
                            tell_reporter=False)
            text = t("citizen.merged", number=source.number, target=target.number)
            for channel, reporter_id in [(f[1], f[0]) for f in followers]:
                self._outbox(session, source, channel, f"reporter:{reporter_id}", text, now,
                             kind="citizen")
        return target

    async def split(self, number: str, attached_id: int, actor: str, reason: str) -> Case:
        """Staff found an attached report to be a different problem: it becomes a case of its
        own (filed and dispatched as usual), and its reporter follows that case instead."""
        async with self.db.session() as session:
            row = (await session.execute(
                select(AttachedReport, Case.item_code, Reporter)
                .join(Case, Case.id == AttachedReport.case_id)
                .join(Reporter, Reporter.id == AttachedReport.reporter_id)
                .where(Case.number == number, AttachedReport.id == attached_id))).first()
        if row is None:
            raise CaseNotFound(f"{number}/{attached_id}")
        attached, item_code, reporter = row
        filing = await self.file(
            CaseDraft(text=attached.text, item_code=item_code, grid_code=attached.grid_code,
                      lat=attached.lat, lon=attached.lon, address=attached.address),
            ReporterRef(reporter.channel, reporter.external_id), attach_duplicates=False)
        # Filed first, unlinked second: if this last step failed the reporter would follow
        # both cases, which is harmless; the other order could lose the report.
        now = self.clock()
        async with self.db.session() as session, session.begin():
            await session.execute(delete(AttachedReport).where(
                AttachedReport.id == attached_id))
            old = (await session.execute(select(Case).where(Case.number == number))).scalar_one()
            self.event(session, old, actor, "split", None, None, now,
                       t("event.split_off", number=filing.case.number, reason=reason))
        return filing.case

    # -- notifications ----------------------------------------------------------------------

    async def _notify_for(self, session: AsyncSession, case: Case, now: datetime,
                          tell_reporter: bool) -> None:
        """Outbox rows for a transition, in the caller's transaction (lost or sent together):
        the grid team's card shows the new state; the reporters hear of it."""
        # The team's first card is the dispatch: a case being filed is not theirs yet.
        group = None if case.status == Status.FILED else await self.teams.group_of(
            session, case.grid_code)
        if group is not None:
            self._outbox(session, case, *group, self.card_text(case), now, kind="card")
        if tell_reporter:
            closed = case.status == Status.CLOSED
            key = "citizen.closed_rate" if closed else "citizen.status_changed"
            text = t(key, number=case.number, status=t(f"status.{case.status}"))
            for channel, reporter_id in await self._reporters_of(session, case):
                self._outbox(session, case, channel, f"reporter:{reporter_id}", text, now,
                             kind="citizen")

    def card_text(self, case: Case) -> str:
        """What a grid team sees of a case: never who reported it."""
        grid = self.grids.get(case.grid_code)
        return t("group.case_card", number=case.number, item=self.item_label(case),
                 address=case.address or t("case.no_address"),
                 grid=grid.name if grid else case.grid_code, text=case.text,
                 deadline=self.local(case.handling_due), status=t(f"status.{case.status}"),
                 target=self.assignee_label(case.assignee))

    async def _reporters_of(self, session: AsyncSession, case: Case) -> list[tuple[str, int]]:
        """The first reporter and everyone whose report was attached: all follow the case."""
        attached = await session.execute(
            select(AttachedReport.channel, AttachedReport.reporter_id)
            .where(AttachedReport.case_id == case.id).order_by(AttachedReport.id))
        return [(case.channel, case.reporter_id), *((c, r) for c, r in attached.all())]

    async def notify_to(self, session: AsyncSession, case: Case, now: datetime,
                        assignee: str, text: str) -> None:
        """A grid is told in its group chat; streets and departments in the console."""
        kind, _, ref = assignee.partition(":")
        group = await self.teams.group_of(session, ref) if kind == "grid" else None
        channel, chat = group if group is not None else ("console", assignee)
        self._outbox(session, case, channel, chat, text, now, kind="notice")

    def _outbox(self, session: AsyncSession, case: Case, channel: str, recipient: str,
                text: str, now: datetime, kind: str) -> None:
        """kind: card (the team's view of the case, to edit in place where the channel can),
        notice (督办 and other messages to a team) or citizen (to a reporter).

        The idempotency key is made once, with the row, and travels with every retry."""
        session.add(OutboxMessage(
            idempotency_key=f"{case.number}:{kind}:{channel}:{uuid.uuid4().hex}",
            case_id=case.id, channel=channel, recipient=recipient, text=text,
            payload={"case": case.number, "status": case.status, "kind": kind},
            status="pending",
            attempts=0, next_attempt_at=now, created_at=now,
        ))

    # -- reading ----------------------------------------------------------------------------

    @staticmethod
    def _visible_to(reporter: ReporterRef):
        """Cases this person reported or whose report was attached to."""
        me = select(Reporter.id).where(Reporter.channel == reporter.channel,
                                       Reporter.external_id == reporter.external_id)
        attached = select(AttachedReport.case_id).where(AttachedReport.reporter_id.in_(me))
        return or_(Case.reporter_id.in_(me), Case.id.in_(attached))

    async def for_reporter(self, reporter: ReporterRef, limit: int = 10) -> list[Case]:
        async with self.db.session() as session:
            rows = await session.execute(
                select(Case).where(self._visible_to(reporter))
                .order_by(Case.id.desc()).limit(limit)
            )
            return list(rows.scalars())

    async def get(self, number: str, reporter: ReporterRef | None = None) -> Case | None:
        """The case with its timeline; with `reporter`, only if that person reported it."""
        query = select(Case).where(Case.number == number).options(
            selectinload(Case.events), selectinload(Case.media)
        )
        if reporter is not None:
            query = query.where(self._visible_to(reporter))
        async with self.db.session() as session:
            return (await session.execute(query)).scalar_one_or_none()

    async def list(self, limit: int = 50, status: str | None = None) -> list[Case]:
        query = select(Case).order_by(Case.id.desc()).limit(limit)
        if status:
            query = query.where(Case.status == status)
        async with self.db.session() as session:
            return list((await session.execute(query)).scalars())

    # -- presenting -------------------------------------------------------------------------

    def local(self, moment: datetime | None) -> str:
        return moment.astimezone(self.tz).strftime("%Y-%m-%d %H:%M") if moment else ""

    def item_label(self, case: Case) -> str:
        return f"{case.big_class} › {case.item_name}"

    def assignee_label(self, assignee: str) -> str:
        kind, _, ref = assignee.partition(":")
        if kind in ("grid", "street"):
            area = self.grids.get(ref)
            return area.name if area else ref
        return ref

    def public_view(self, case: Case, with_timeline: bool = True) -> dict[str, Any]:
        """What the reporter, or anyone allowed to see the case, gets: no reporter identity."""
        grid = self.grids.get(case.grid_code)
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
            "address": case.address,
            "location": None if case.lat is None else {"lat": case.lat, "lon": case.lon},
            "text": case.text,
            "created_at": case.created_at.isoformat(),
            "response_due": case.response_due.isoformat() if case.response_due else None,
            "handling_due": case.handling_due.isoformat() if case.handling_due else None,
            "closed_at": case.closed_at.isoformat() if case.closed_at else None,
            "rating": case.rating,
        }
        if with_timeline:
            view["timeline"] = [
                {"at": e.at.isoformat(), "action": e.action, "status": e.to_status,
                 "status_label": t(f"status.{e.to_status}") if e.to_status else "",
                 "note": e.note}
                for e in case.events
            ]
            view["photos"] = len(case.media)
        return view
