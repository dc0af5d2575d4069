"""Filing a report: a new case filed and dispatched at once, or the report attached to an
open case of the same problem nearby."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.cases.context import CaseContext
from bot.cases.drafts import (
    MAX_ADDRESS,
    MAX_MEDIA_REF,
    CaseDraft,
    Filing,
    ReporterRef,
    distance_m,
    is_report_clash,
    near_box,
    near_terms,
)
from bot.cases.filing_pg import ReporterRaced, insert_filed, open_points_near
from bot.cases.notices import CaseNotices
from bot.cases.rows import FiledRows, add_event, timer_rows
from bot.cases.views import CaseViews
from bot.catalogue import CatalogueItem
from bot.changes import mark_changed
from bot.media_store import media_kind
from bot.models import AttachedReport, Case, CaseMedia, FiledReport, Reporter
from bot.numbering import is_number_clash
from bot.scope import Level, Scope
from bot.texts import t
from bot.workflow import OPEN, Status, check_transition
from nlp.normalize import prepare

_REPORTER_ID = select(Reporter.id).where(Reporter.channel == bindparam("channel"),
                                         Reporter.external_id == bindparam("external_id"))


class CaseFiling:
    def __init__(self, ctx: CaseContext, views: CaseViews, notices: CaseNotices) -> None:
        self.ctx = ctx
        self.views = views
        self.notices = notices

    def dispatch_target(self, item: CatalogueItem, grid_code: str) -> tuple[str, str]:
        """(level, assignee): small matters stay in the grid, ordinary ones go to the street,
        big ones to the district department responsible for the item."""
        if item.level == Level.GRID:
            return Level.GRID, str(Scope.grid(grid_code))
        if item.level == Level.STREET:
            street = self.ctx.grids.at_level(grid_code, "street")
            return Level.STREET, str(Scope.street(street.code if street else grid_code))
        department = self.ctx.config.district_department(item.code, item.department)
        return Level.DISTRICT, str(Scope.department(department))

    async def file(self, draft: CaseDraft, reporter: ReporterRef,
                   attach_duplicates: bool = True) -> Filing:
        """File a new case, or attach the report to an open case of the same item nearby.

        The hot path (a city files ~20,000 a day), so few round trips: on PostgreSQL the
        number from Redis and one autocommitted statement (bot/cases/filing_pg.py), after a
        plain-read duplicate lookup when that is on; on SQLite one transaction with one
        multi-row insert per table. Either way the rows are those the report → filed →
        dispatched transitions of `move` write (tests/test_scale.py checks them)."""
        item = self.ctx.catalogue.get(draft.item_code)
        grid = self.ctx.grids.get(draft.grid_code)
        if grid is None:
            raise ValueError(f"unknown grid {draft.grid_code}")
        # Every free-text field is cleaned and masked here, once, for every way in: what is
        # stored is what teams, the console and the public may see.
        draft.address = prepare(draft.address, MAX_ADDRESS)
        draft.media = [ref for ref in draft.media if 0 < len(ref) <= MAX_MEDIA_REF]
        resync, number = False, None
        for attempt in range(3):
            try:
                return await self._file_once(draft, reporter, attach_duplicates, item,
                                             grid.code, resync, number)
            except IntegrityError as exc:
                if draft.report_key and is_report_clash(exc):
                    # The same report, filed a moment ago by a retry that overtook this one.
                    replay = await self.filed_by(draft.report_key)
                    if replay is not None:
                        return replay
                # Only a number clash is worth another go (the counter was behind the
                # database); the retry resyncs it first.
                if not is_number_clash(exc) or attempt == 2:
                    raise
                resync, number = True, None
            except ReporterRaced as raced:
                if attempt == 2:
                    raise
                number = raced.number  # unused: the retry takes it
        raise AssertionError("unreachable")

    async def filed_by(self, report_key: str) -> Filing | None:
        """The case a report key filed or joined, if it was filed."""
        async with self.ctx.db.session() as session:
            row = (await session.execute(
                select(Case, FiledReport.key).join(FiledReport, FiledReport.case_id == Case.id)
                .where(FiledReport.key == report_key))).first()
        if row is None:
            return None
        return Filing(row[0], attached=False, replayed=True)

    async def _file_once(self, draft: CaseDraft, reporter: ReporterRef,
                         attach_duplicates: bool, item: CatalogueItem, grid_code: str,
                         resync: bool, number: str | None = None) -> Filing:
        ctx = self.ctx
        now = ctx.clock()
        if ctx.db.autocommit_engine is not None:
            # The filing is one statement, atomic by itself: run it in autocommit on a bare
            # connection, which saves the BEGIN and COMMIT round trips and the ORM session.
            # The duplicate lookup before it is a plain read; only when it sees an open case
            # nearby does the locked transaction below take over (and look again under the
            # lock).
            async with ctx.db.autocommit_engine.connect() as conn:
                if not attach_duplicates or not await self._any_duplicate(conn, draft, now):
                    case = self._new_case(draft, reporter, item, grid_code, now,
                                          number or await ctx.numbers.take(conn, now, resync))
                    await self._insert_pg(conn, case, reporter, draft, now)
                    return Filing(case, attached=False)
        async with ctx.db.session() as session, session.begin():
            duplicate = (await self._open_duplicate(session, draft, now)
                         if attach_duplicates else None)
            if duplicate is not None:
                reporter_id = await self._reporter_id(session, reporter, now)
                await self._attach(session, duplicate, draft, reporter_id, reporter.channel,
                                   now)
                if draft.report_key:
                    session.add(FiledReport(key=draft.report_key, case_id=duplicate.id,
                                            created_at=now))
                return Filing(duplicate, attached=True)
            case = self._new_case(draft, reporter, item, grid_code, now,
                                  number or await ctx.numbers.take(session, now, resync))
            if ctx.db.dialect == "postgresql":
                await self._insert_pg(session, case, reporter, draft, now)
            else:
                case.reporter_id = await self._reporter_id(session, reporter, now)
                session.add(case)
                await session.flush()
                room = await ctx.teams.group_of(session, case.grid_code)
                await self._rows(case, draft, now).write(session, case, room, now)
        return Filing(case, attached=False)

    def _rows(self, case: Case, draft: CaseDraft, now: datetime) -> FiledRows:
        timers = timer_rows(case, now, self.ctx.calendar,
                            self.ctx.catalogue.get(case.item_code).handling.working)
        return FiledRows.of(case, now, timers, self.notices.card_text(case),
                            self.views.assignee_label(case.assignee), draft.media,
                            draft.report_key)

    async def _insert_pg(self, session: AsyncSession | AsyncConnection, case: Case,
                         reporter: ReporterRef, draft: CaseDraft, now: datetime) -> None:
        await insert_filed(session, case, reporter, self._rows(case, draft, now),
                           self._configured_room(case.grid_code), now)
        # No ORM flush saw this case: tell the change publisher (bot/changes.py) directly.
        if isinstance(session, AsyncSession):
            mark_changed(session, case.id)  # published when the session commits
        elif (publisher := getattr(self.ctx.db, "change_publisher", None)) is not None:
            publisher.announce(case)  # autocommitted already, and the row is at hand

    def _new_case(self, draft: CaseDraft, reporter: ReporterRef, item: CatalogueItem,
                  grid_code: str, now: datetime, number: str) -> Case:
        """The case as filed and dispatched (report → filed → dispatched in one go)."""
        check_transition(Status.REPORTED, Status.FILED)
        check_transition(Status.FILED, Status.DISPATCHED)
        level, assignee = self.dispatch_target(item, grid_code)
        calendar = self.ctx.calendar
        return Case(
            number=number,
            status=Status.DISPATCHED,
            item_code=item.code, item_name=item.name, big_class=item.big_class,
            department=Scope.parse(assignee).ref if level == Level.DISTRICT else item.department,
            handling_level=item.level, current_level=level,
            assignee=assignee, urgent=item.urgent or draft.urgent, text=draft.text,
            address=draft.address,
            lat=draft.lat, lon=draft.lon, grid_code=grid_code, channel=reporter.channel,
            source=draft.source,
            classifier_confidence=draft.confidence,
            created_at=now, updated_at=now,
            response_due=calendar.add(now, item.response),
            handling_due=calendar.add(now, item.handling),
            reopen_count=0,
        )

    def _configured_room(self, grid_code: str) -> tuple[str, str] | None:
        """The grid file's `group_chat`: the fallback of Teams.group_of when no binding was
        made in chat (the statement looks the binding up itself)."""
        area = self.ctx.grids.get(grid_code)
        if area is None or not area.group_chat:
            return None
        channel, _, chat = area.group_chat.partition(":")
        return channel, chat

    # -- duplicates -------------------------------------------------------------------------

    def _nearby_filter(self, draft: CaseDraft, now: datetime) -> list[Any] | None:
        """WHERE terms for open cases of the same item in the box around the report, or
        None when duplicates are off or the report has no point."""
        config = self.ctx.config
        radius = config.duplicate_radius_m
        if draft.lat is None or draft.lon is None or radius <= 0:
            return None
        return [
            Case.item_code == draft.item_code,
            Case.status.in_([s.value for s in OPEN]),
            Case.created_at >= now - timedelta(hours=config.duplicate_window_h),
            *near_terms(draft.lat, draft.lon, radius),
        ]

    async def _any_duplicate(self, conn: AsyncConnection, draft: CaseDraft,
                             now: datetime) -> bool:
        """Whether an open case of the same item is within the distance (a plain read of
        points only: the locked transaction then finds which one)."""
        config = self.ctx.config
        radius = config.duplicate_radius_m
        if draft.lat is None or draft.lon is None or radius <= 0:
            return False  # (as _nearby_filter)
        rows = await open_points_near(
            conn, draft.item_code, now - timedelta(hours=config.duplicate_window_h),
            near_box(draft.lat, draft.lon, radius))
        if rows is None:  # not on asyncpg: the same read through SQLAlchemy
            where = self._nearby_filter(draft, now)
            assert where is not None
            rows = [(lat, lon) for lat, lon in
                    (await conn.execute(select(Case.lat, Case.lon).where(*where))).all()]
        # (The filter's BETWEEN already leaves out cases without a location.)
        return any(distance_m(draft.lat, draft.lon, lat, lon) <= radius for lat, lon in rows
                   if lat is not None and lon is not None)

    async def _open_duplicate(self, session: AsyncSession, draft: CaseDraft,
                              now: datetime) -> Case | None:
        """The nearest open case of the same item within the configured distance and time,
        locked for the attach."""
        where = self._nearby_filter(draft, now)
        if where is None:
            return None
        assert draft.lat is not None and draft.lon is not None
        query = select(Case).where(*where).with_for_update()
        rows = (await session.execute(query)).scalars().all()
        radius = self.ctx.config.duplicate_radius_m
        near = [(distance_m(draft.lat, draft.lon, c.lat, c.lon), c.id, c) for c in rows
                if c.lat is not None and c.lon is not None]  # (the filter's BETWEEN has them)
        near = [n for n in near if n[0] <= radius]
        return min(near)[2] if near else None

    async def attach_report(self, session: AsyncSession, case: Case, draft: CaseDraft,
                            reporter: ReporterRef, now: datetime) -> None:
        """Join a report to an open case (the case row locked by the caller): the reporter
        follows it from now on. What filing does with a duplicate, for a citizen who chose
        the case themselves (「是这个吗？」)."""
        reporter_id = await self._reporter_id(session, reporter, now)
        await self._attach(session, case, draft, reporter_id, reporter.channel, now)

    async def _attach(self, session: AsyncSession, case: Case, draft: CaseDraft,
                      reporter_id: int, channel: str, now: datetime) -> None:
        already = case.reporter_id == reporter_id or (await session.execute(
            select(AttachedReport.id).where(AttachedReport.case_id == case.id,
                                            AttachedReport.reporter_id == reporter_id)
        )).first() is not None
        if not already:
            session.add(AttachedReport(
                case_id=case.id, reporter_id=reporter_id, channel=channel,
                text=draft.text, address=draft.address, lat=draft.lat, lon=draft.lon,
                grid_code=draft.grid_code, created_at=now))
        add_event(session, case, "citizen", "attach", None, None, now,
                  t("event.attached", text=draft.text[:60]))
        for ref in draft.media:
            session.add(CaseMedia(case_id=case.id, kind=media_kind(ref), ref=ref,
                                  added_by="citizen", created_at=now))
        case.updated_at = now

    async def reporter_id_for(self, session: AsyncSession, ref: ReporterRef,
                              now: datetime) -> int:
        """The person's reporter row id (made on first use): how outbox rows and follows
        name them without holding their channel identity."""
        return await self._reporter_id(session, ref, now)

    async def _reporter_id(self, session: AsyncSession, ref: ReporterRef,
                           now: datetime) -> int:
        """The reporter's row id, created on their first report. A plain read for people
        seen before (no row lock, no new row version per filing); two first reports of one
        person at once both end up with the row one of them inserted."""
        params = {"channel": ref.channel, "external_id": ref.external_id}
        found = (await session.execute(_REPORTER_ID, params)).scalar()
        if found is not None:
            return found
        values: dict[str, Any] = {**params, "phone": ref.phone, "created_at": now}
        keys = ["channel", "external_id"]
        insert_new: Insert  # each dialect's insert has its own on_conflict_do_nothing
        if self.ctx.db.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            insert_new = pg_insert(Reporter).values(**values).on_conflict_do_nothing(
                index_elements=keys)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            insert_new = sqlite_insert(Reporter).values(**values).on_conflict_do_nothing(
                index_elements=keys)
        created = (await session.execute(insert_new.returning(Reporter.id))).scalar()
        if created is not None:
            return created
        return (await session.execute(_REPORTER_ID, params)).scalar_one()
