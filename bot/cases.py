"""Filing cases and moving them through the workflow, with the audit trail and the outbox."""

from __future__ import annotations

import builtins
import hashlib
import json
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from sqlalchemy import Insert, bindparam, delete, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import selectinload

from bot.catalogue import Catalogue, CatalogueItem
from bot.changes import mark_changed
from bot.config import CasesConfig
from bot.grids import GridMap
from bot.models import (
    AttachedReport,
    Case,
    CaseEvent,
    CaseMedia,
    CaseTimer,
    FiledReport,
    OutboxMessage,
    Reporter,
)
from bot.numbering import CaseNumbers, is_number_clash
from bot.storage import Database
from bot.teams import Teams
from bot.texts import t
from bot.workflow import OPEN, Status, TransitionError, check_transition
from bot.worktime import WorkCalendar
from nlp.normalize import clean, mask_personal, prepare

Clock = Callable[[], datetime]
REMIND_AT = (0.5, 0.8)  # shares of the handling time at which the assignee is reminded
NEXT_LEVEL = {"grid": "street", "street": "district"}
# Events the public and reporters see (in their own words, public.<action>); the rest —
# reminders, 督办, merges and splits — are internal.
PUBLIC_ACTIONS = ("report", "attach", "arrive", "on_spot", "rate")

# Built once: a statement object caches its compiled form, so the hot filing path skips
# SQLAlchemy's per-call statement construction and cache-key work.
_REPORTER_ID = select(Reporter.id).where(Reporter.channel == bindparam("channel"),
                                         Reporter.external_id == bindparam("external_id"))
_INSERT_EVENTS = insert(CaseEvent)
_INSERT_TIMERS = insert(CaseTimer)
_INSERT_OUTBOX = insert(OutboxMessage)
_INSERT_MEDIA = insert(CaseMedia)

# PostgreSQL: a filed case in ONE statement — the reporter (found or created), the case, its
# three events, its timers, the grid team's card and the photos. On this kind of machine a
# round trip to the database costs more CPU than the SQL it carries, so this replaces eight.
# A brand-new reporter's row is inserted here; when two first reports of one person race,
# the second waits for the first and takes its row (the no-op update makes RETURNING give
# the id). Should `who` still come out empty, nothing is inserted and the caller retries.
_CASE_COLUMNS = (
    "number", "status", "item_code", "item_name", "big_class", "department",
    "handling_level", "current_level", "assignee", "urgent", "text", "address", "lat", "lon",
    "grid_code", "channel", "classifier_confidence", "created_at", "updated_at",
    "response_due", "handling_due", "reopen_count",
)
_FILE_PG = text(f"""
WITH found AS (
    SELECT id FROM reporters WHERE channel = :channel AND external_id = :external_id
), made AS (
    INSERT INTO reporters (channel, external_id, phone, created_at)
    SELECT :channel, :external_id, :phone, :now WHERE NOT EXISTS (SELECT 1 FROM found)
    ON CONFLICT (channel, external_id) DO UPDATE SET external_id = EXCLUDED.external_id
    RETURNING id
), who AS (
    SELECT id FROM found UNION ALL SELECT id FROM made
), c AS (
    INSERT INTO cases ({", ".join(_CASE_COLUMNS)}, reporter_id)
    SELECT {", ".join(f":c_{name}" for name in _CASE_COLUMNS)}, who.id FROM who
    RETURNING id, reporter_id
), ev AS (
    INSERT INTO case_events (case_id, at, actor, action, from_status, to_status, note)
    SELECT c.id, :now, e.actor, e.action, e.from_status, e.to_status, e.note
    FROM c, unnest(CAST(:ev_actor AS varchar[]), CAST(:ev_action AS varchar[]),
                   CAST(:ev_from AS varchar[]), CAST(:ev_to AS varchar[]),
                   CAST(:ev_note AS text[]))
         WITH ORDINALITY AS e(actor, action, from_status, to_status, note, n)
    ORDER BY e.n
), tm AS (
    INSERT INTO case_timers (case_id, kind, level, due_at, created_at, outcome)
    SELECT c.id, x.kind, :c_current_level, x.due_at, :now, ''
    FROM c, unnest(CAST(:tm_kind AS varchar[]), CAST(:tm_due AS timestamp[]))
         WITH ORDINALITY AS x(kind, due_at, n)
    ORDER BY x.n
), bound AS (
    SELECT channel, chat_id FROM group_bindings WHERE grid_code = :c_grid_code
    ORDER BY id DESC LIMIT 1
), room AS (
    SELECT channel, chat_id FROM bound
    UNION ALL
    SELECT CAST(:room_channel AS varchar), CAST(:room_chat AS varchar)
    WHERE CAST(:room_channel AS varchar) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM bound)
), card AS (
    INSERT INTO outbox (idempotency_key, case_id, channel, recipient, text, payload, status,
                        attempts, next_attempt_at, created_at, last_error)
    SELECT :c_number || ':card:' || room.channel || ':' || :card_uuid, c.id, room.channel,
           room.chat_id, :card_text, CAST(:card_payload AS json), 'pending', 0, :now, :now, ''
    FROM c, room
), photos AS (
    INSERT INTO case_media (case_id, kind, ref, added_by, created_at)
    SELECT c.id, 'photo', m.ref, 'citizen', :now
    FROM c, unnest(CAST(:media AS varchar[])) WITH ORDINALITY AS m(ref, n)
    ORDER BY m.n
), filed AS (
    INSERT INTO filed_reports (key, case_id, created_at)
    SELECT CAST(:report_key AS varchar), c.id, :now FROM c
    WHERE CAST(:report_key AS varchar) <> ''
)
SELECT id, reporter_id FROM c
""")


class _ReporterRaced(Exception):
    """A brand-new reporter's first two reports were filed at the same moment."""


def _naive_utc(moment: datetime | None) -> datetime | None:
    """What UTCDateTime stores (the raw statement bypasses the column types)."""
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


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
    # channel:user:id of the client's report (its 确认 message, a form's report_id): the same
    # key files once; a retry gets the case it filed (Filing.replayed).
    report_key: str = ""
    # Danger read from the words (a gas smell, an elderly person unseen): urgent whatever the
    # item says.
    urgent: bool = False


MAX_MEDIA_REF = 500  # case_media.ref: a longer reference is not a file id or a link
MAX_ADDRESS = 200  # cases.address


@dataclass(frozen=True)
class Filing:
    case: Case
    attached: bool  # True: an open case of the same problem nearby took this report
    replayed: bool = False  # True: this report key was filed before; `case` is what it filed


def report_key(channel: str, user: str, report_id: str) -> str:
    """The filed_reports key of a client's report id: hashed, so it fits and holds no id."""
    digest = hashlib.blake2b(f"{user}\x00{report_id}".encode(), digest_size=20).hexdigest()
    return f"{channel[:32]}:{digest}"


def is_report_clash(exc: IntegrityError) -> bool:
    """The filed_reports key was taken: the report was filed before (PostgreSQL or SQLite)."""
    text = str(exc.orig)
    return "filed_reports_pkey" in text or "filed_reports.key" in text


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
        redis: aioredis.Redis | None = None,
    ) -> None:
        self.db = db
        self.catalogue = catalogue
        self.grids = grids
        self.calendar = calendar
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        self.teams = teams
        self.clock = clock
        # Numbers come from Redis on PostgreSQL (the store the teams already share).
        self.numbers = CaseNumbers(db.dialect, redis if redis is not None else teams.redis,
                                   config.number_prefix, self.tz)

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
        """File a new case, or attach the report to an open case of the same item nearby.

        The hot path (a city files ~20,000 a day), so few round trips: on PostgreSQL the
        number from Redis and one autocommitted statement (_FILE_PG), after a plain-read
        duplicate lookup when that is on; on SQLite one transaction with one multi-row
        insert per table. Either way the rows are those the report → filed → dispatched
        transitions of `move` write (tests/test_scale.py checks them)."""
        item = self.catalogue.get(draft.item_code)
        grid = self.grids.get(draft.grid_code)
        if grid is None:
            raise ValueError(f"unknown grid {draft.grid_code}")
        # Every free-text field is cleaned and masked here, once, for every way in: what is
        # stored is what teams, the console and the public may see.
        draft.address = prepare(draft.address, MAX_ADDRESS)
        draft.media = [ref for ref in draft.media if 0 < len(ref) <= MAX_MEDIA_REF]
        resync = False
        for attempt in range(3):
            try:
                return await self._file_once(draft, reporter, attach_duplicates, item,
                                             grid.code, resync)
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
                resync = True
            except _ReporterRaced:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def filed_by(self, report_key: str) -> Filing | None:
        """The case a report key filed or joined, if it was filed."""
        async with self.db.session() as session:
            row = (await session.execute(
                select(Case, FiledReport.key).join(FiledReport, FiledReport.case_id == Case.id)
                .where(FiledReport.key == report_key))).first()
        if row is None:
            return None
        return Filing(row[0], attached=False, replayed=True)

    async def _file_once(self, draft: CaseDraft, reporter: ReporterRef,
                         attach_duplicates: bool, item: CatalogueItem, grid_code: str,
                         resync: bool) -> Filing:
        now = self.clock()
        if self.db.autocommit_engine is not None:
            # The filing is one statement, atomic by itself: run it in autocommit on a bare
            # connection, which saves the BEGIN and COMMIT round trips and the ORM session.
            # The duplicate lookup before it is a plain read; only when it sees an open case
            # nearby does the locked transaction below take over (and look again under the
            # lock).
            async with self.db.autocommit_engine.connect() as conn:
                if not attach_duplicates or not await self._any_duplicate(conn, draft, now):
                    case = self._new_case(draft, reporter, item, grid_code, now,
                                          await self.numbers.take(conn, now, resync))
                    await self._insert_filed_pg(conn, case, reporter, draft.media, now,
                                                draft.report_key)
                    return Filing(case, attached=False)
        async with self.db.session() as session, session.begin():
            duplicate = (await self._open_duplicate(session, draft, now)
                         if attach_duplicates else None)
            if duplicate is not None:
                reporter_id = await self._reporter_id(session, reporter, now)
                await self._attach(session, duplicate, draft, reporter_id, reporter.channel,
                                   now)
                self._mark_filed(session, draft, duplicate.id, now)
                return Filing(duplicate, attached=True)
            case = self._new_case(draft, reporter, item, grid_code, now,
                                  await self.numbers.take(session, now, resync))
            if self.db.dialect == "postgresql":
                await self._insert_filed_pg(session, case, reporter, draft.media, now,
                                            draft.report_key)
            else:
                case.reporter_id = await self._reporter_id(session, reporter, now)
                session.add(case)
                await session.flush()
                await self._write_filed_rows(session, case, draft.media, now)
                self._mark_filed(session, draft, case.id, now)
        return Filing(case, attached=False)

    @staticmethod
    def _mark_filed(session: AsyncSession, draft: CaseDraft, case_id: int,
                    now: datetime) -> None:
        if draft.report_key:
            session.add(FiledReport(key=draft.report_key, case_id=case_id, created_at=now))

    def _new_case(self, draft: CaseDraft, reporter: ReporterRef, item: CatalogueItem,
                  grid_code: str, now: datetime, number: str) -> Case:
        """The case as filed and dispatched (report → filed → dispatched in one go)."""
        check_transition(Status.REPORTED, Status.FILED)
        check_transition(Status.FILED, Status.DISPATCHED)
        level, assignee = self.dispatch_target(item, grid_code)
        return Case(
            number=number,
            status=Status.DISPATCHED,
            item_code=item.code, item_name=item.name, big_class=item.big_class,
            department=item.department, handling_level=item.level, current_level=level,
            assignee=assignee, urgent=item.urgent or draft.urgent, text=draft.text,
            address=draft.address,
            lat=draft.lat, lon=draft.lon, grid_code=grid_code, channel=reporter.channel,
            classifier_confidence=draft.confidence,
            created_at=now, updated_at=now,
            response_due=self.calendar.add(now, item.response),
            handling_due=self.calendar.add(now, item.handling),
            reopen_count=0,
        )

    async def _insert_filed_pg(self, session: AsyncSession | AsyncConnection, case: Case,
                               reporter: ReporterRef, media: list[str], now: datetime,
                               report_key: str = "") -> None:
        """The rows `_write_filed_rows` writes (and the case and reporter), in one statement
        (_FILE_PG). Sets case.id and case.reporter_id; the case object stays outside the
        session, like a committed one with expire_on_commit off."""
        events = self._filed_events(case)
        timers = self._timer_rows(case, now)
        room = self._configured_room(case.grid_code)
        params: dict[str, Any] = {
            f"c_{name}": getattr(case, name) for name in _CASE_COLUMNS}
        for name in ("created_at", "updated_at", "response_due", "handling_due"):
            params[f"c_{name}"] = _naive_utc(params[f"c_{name}"])
        params["c_status"] = str(case.status)
        params.update(
            channel=reporter.channel, external_id=reporter.external_id, phone=reporter.phone,
            now=_naive_utc(now),
            ev_actor=[e["actor"] for e in events], ev_action=[e["action"] for e in events],
            ev_from=[e["from_status"] for e in events], ev_to=[e["to_status"] for e in events],
            ev_note=[e["note"] for e in events],
            tm_kind=[r["kind"] for r in timers], tm_due=[_naive_utc(r["due_at"]) for r in timers],
            room_channel=room[0] if room else None, room_chat=room[1] if room else None,
            card_uuid=uuid.uuid4().hex, card_text=self.card_text(case),
            card_payload=json.dumps({"case": case.number, "status": str(case.status),
                                     "level": case.current_level, "kind": "card"},
                                    ensure_ascii=False),
            media=list(media), report_key=report_key,
        )
        row = (await session.execute(_FILE_PG, params)).first()
        if row is None:
            raise _ReporterRaced(reporter.channel)
        # Indexed, not unpacked: mypy types the items of an untyped (text) row as object.
        case.id, case.reporter_id = row[0], row[1]
        # No ORM flush saw this case: tell the change publisher (bot/changes.py) directly.
        if isinstance(session, AsyncSession):
            mark_changed(session, case.id)  # published when the session commits
        elif (publisher := getattr(self.db, "change_publisher", None)) is not None:
            publisher.announce(case)  # autocommitted already, and the row is at hand

    def _configured_room(self, grid_code: str) -> tuple[str, str] | None:
        """The grid file's `group_chat`: the fallback of Teams.group_of when no binding was
        made in chat (the statement looks the binding up itself)."""
        area = self.grids.get(grid_code)
        if area is None or not area.group_chat:
            return None
        channel, _, chat = area.group_chat.partition(":")
        return channel, chat

    def _filed_events(self, case: Case) -> list[dict[str, Any]]:
        """The trail of report → filed → dispatched, as `move` writes it."""
        return [
            {"actor": "citizen", "action": "report", "from_status": None,
             "to_status": str(Status.REPORTED), "note": ""},
            {"actor": "system", "action": "transition", "from_status": str(Status.REPORTED),
             "to_status": str(Status.FILED), "note": t("event.auto_filed")},
            {"actor": "system", "action": "transition", "from_status": str(Status.FILED),
             "to_status": str(Status.DISPATCHED),
             "note": t("event.dispatched", target=self.assignee_label(case.assignee))},
        ]

    async def _write_filed_rows(self, session: AsyncSession, case: Case, media: list[str],
                                now: datetime) -> None:
        """What `move` writes for report → filed → dispatched, in one insert per table.
        The reporter hears about filing in the reply to their confirmation, not twice; the
        grid team's first card is the dispatch (a case being filed is not theirs yet)."""
        await session.execute(_INSERT_EVENTS, [
            {**event, "case_id": case.id, "at": now} for event in self._filed_events(case)])
        await session.execute(_INSERT_TIMERS, self._timer_rows(case, now))
        group = await self.teams.group_of(session, case.grid_code)
        if group is not None:
            await session.execute(_INSERT_OUTBOX, [
                self._outbox_row(case, *group, self.card_text(case), now, kind="card")])
        if media:
            await session.execute(_INSERT_MEDIA, [
                {"case_id": case.id, "kind": "photo", "ref": ref, "added_by": "citizen",
                 "created_at": now} for ref in media])
    def _add_media(self, session: AsyncSession, case: Case, refs: list[str],
                   now: datetime) -> None:
        for ref in refs:
            session.add(CaseMedia(case_id=case.id, kind="photo", ref=ref, added_by="citizen",
                                  created_at=now))

    def _nearby_filter(self, draft: CaseDraft, now: datetime) -> list[Any] | None:
        """WHERE terms for open cases of the same item in the box around the report, or
        None when duplicates are off or the report has no point."""
        radius = self.config.duplicate_radius_m
        if draft.lat is None or draft.lon is None or radius <= 0:
            return None
        d_lat = radius / 111_320
        d_lon = d_lat / max(math.cos(math.radians(draft.lat)), 0.01)
        return [
            Case.item_code == draft.item_code,
            Case.status.in_([s.value for s in OPEN]),
            Case.created_at >= now - timedelta(hours=self.config.duplicate_window_h),
            Case.lat.between(draft.lat - d_lat, draft.lat + d_lat),
            Case.lon.between(draft.lon - d_lon, draft.lon + d_lon),
        ]

    async def _any_duplicate(self, conn: AsyncConnection, draft: CaseDraft,
                             now: datetime) -> bool:
        """Whether an open case of the same item is within the distance (a plain read of
        points only: the locked transaction then finds which one)."""
        where = self._nearby_filter(draft, now)
        if where is None:
            return False
        assert draft.lat is not None and draft.lon is not None
        rows = (await conn.execute(select(Case.lat, Case.lon).where(*where))).all()
        radius = self.config.duplicate_radius_m
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
        radius = self.config.duplicate_radius_m
        near = [(distance_m(draft.lat, draft.lon, c.lat, c.lon), c.id, c) for c in rows
                if c.lat is not None and c.lon is not None]  # (the filter's BETWEEN has them)
        near = [n for n in near if n[0] <= radius]
        return min(near)[2] if near else None

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
        self.event(session, case, "citizen", "attach", None, None, now,
                    t("event.attached", text=draft.text[:60]))
        self._add_media(session, case, draft.media, now)
        case.updated_at = now

    async def _reporter_id(self, session: AsyncSession, ref: ReporterRef,
                           now: datetime) -> int:
        """The reporter's row id, created on their first report. A plain read for people
        seen before (no row lock, no new row version per filing); two first reports of one
        person at once both end up with the row one of them inserted."""
        params = {"channel": ref.channel, "external_id": ref.external_id}
        found = (await session.execute(_REPORTER_ID, params)).scalar()
        if found is not None:
            return found
        dialect = self.db.dialect
        values: dict[str, Any] = {**params, "phone": ref.phone, "created_at": now}
        keys = ["channel", "external_id"]
        insert_new: Insert  # each dialect's insert has its own on_conflict_do_nothing
        if dialect == "postgresql":
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

    # -- moving -----------------------------------------------------------------------------

    def event(self, session: AsyncSession, case: Case, actor: str, action: str,
               old: str | None, new: str | None, now: datetime, note: str = "") -> CaseEvent:
        # Notes are free text from workers and staff: cleaned and masked like a report.
        event = CaseEvent(case_id=case.id, at=now, actor=actor, action=action,
                          from_status=old, to_status=new, note=mask_personal(clean(note)))
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
        for row in self._timer_rows(case, now):
            session.add(CaseTimer(**row))

    def _timer_rows(self, case: Case, now: datetime) -> list[dict[str, Any]]:
        """A dispatched case's reminders (at REMIND_AT of the handling time) and escalation."""
        if case.status != Status.DISPATCHED or case.handling_due is None:
            return []
        span = case.handling_due - now
        rows = [{"case_id": case.id, "kind": "remind", "level": case.current_level,
                 "due_at": now + span * share, "created_at": now, "outcome": ""}
                for share in REMIND_AT]
        rows.append({"case_id": case.id, "kind": "escalate", "level": case.current_level,
                     "due_at": case.handling_due, "created_at": now, "outcome": ""})
        return rows

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
            # The work's reads (bindings, reporters, timers) do not depend on its own writes:
            # without autoflush the writes go out together at commit, the outbox rows as one
            # INSERT, instead of a flush before every read.
            with session.no_autoflush:
                await work(session, case, self.clock())
        return case

    async def rate(self, number: str, reporter: ReporterRef, score: int, note: str = "") -> Case:
        """The reporter's 1–5 rating of a closed case; 1–2 reopens it once (back to the level
        that handled it, which is told)."""
        if not 1 <= score <= 5:
            raise ValueError("a rating is 1 to 5")
        now = self.clock()
        async with self.db.session() as session, session.begin():
            # Only the first reporter rates: a follower's score would count one case twice
            # and could reopen someone else's case.
            case = (await session.execute(
                select(Case).where(Case.number == number,
                                   Case.reporter_id.in_(self._me(reporter)))
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
        # (The column allows a case without a reporter row: then only the attached ones.)
        first = [(case.channel, case.reporter_id)] if case.reporter_id is not None else []
        return [*first, *((c, r) for c, r in attached.all())]

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
        session.add(OutboxMessage(**self._outbox_row(case, channel, recipient, text, now, kind)))

    @staticmethod
    def _outbox_row(case: Case, channel: str, recipient: str, text: str, now: datetime,
                    kind: str) -> dict[str, Any]:
        return {
            "idempotency_key": f"{case.number}:{kind}:{channel}:{uuid.uuid4().hex}",
            "case_id": case.id, "channel": channel, "recipient": recipient, "text": text,
            "payload": {"case": case.number, "status": str(case.status),
                        "level": case.current_level, "kind": kind},
            "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
        }

    # -- reading ----------------------------------------------------------------------------

    @staticmethod
    def _me(reporter: ReporterRef) -> Any:
        return select(Reporter.id).where(Reporter.channel == reporter.channel,
                                         Reporter.external_id == reporter.external_id)

    @classmethod
    def _visible_to(cls, reporter: ReporterRef) -> Any:
        """Cases this person reported or whose report was attached to."""
        me = cls._me(reporter)
        attached = select(AttachedReport.case_id).where(AttachedReport.reporter_id.in_(me))
        return or_(Case.reporter_id.in_(me), Case.id.in_(attached))

    async def _seen_by(self, query: Any, reporter: ReporterRef) -> list[Case]:
        """The cases of `query` visible to the reporter, each marked with whether they are its
        first reporter (`viewer_owns`): a follower sees the status, not the first report."""
        query = query.where(self._visible_to(reporter)).add_columns(
            Case.reporter_id.in_(self._me(reporter)).label("own"))
        async with self.db.session() as session:
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

    def public_view(self, case: Case, with_timeline: bool = True,
                    own: bool | None = None) -> dict[str, Any]:
        """What the reporter, or anyone allowed to see the case, gets: no reporter identity,
        no staff names, no internal notes. `own` False (a follower whose report was attached,
        or the public): the status only — never another reporter's words, address or photos.
        None: what `get`/`for_reporter` found about the viewer (the reporter by default)."""
        if own is None:
            own = getattr(case, "viewer_owns", True)
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
