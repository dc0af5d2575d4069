"""Filing on PostgreSQL in ONE statement: the reporter (found or created), the case, and the
rows `FiledRows` describes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.cases.drafts import ReporterRef
from bot.cases.rows import FiledRows
from bot.media_store import media_kind
from bot.models import Case
from bot.workflow import OPEN

# PostgreSQL: a filed case in ONE statement — the reporter (found or created), the case, its
# three events, its timers, the grid team's card and the photos. On this kind of machine a
# round trip to the database costs more CPU than the SQL it carries, so this replaces eight.
# A brand-new reporter's row is inserted here; when two first reports of one person race,
# the second waits for the first and takes its row (the no-op update makes RETURNING give
# the id). Should `who` still come out empty, nothing is inserted and the caller retries.
_CASE_COLUMNS = (
    "number", "status", "item_code", "item_name", "big_class", "department",
    "handling_level", "current_level", "assignee", "urgent", "text", "address", "lat", "lon",
    "grid_code", "channel", "source", "classifier_confidence", "created_at", "updated_at",
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
    SELECT c.id, m.kind, m.ref, 'citizen', :now
    FROM c, unnest(CAST(:media AS varchar[]), CAST(:media_kinds AS varchar[]))
        WITH ORDINALITY AS m(ref, kind, n)
    ORDER BY m.n
), filed AS (
    INSERT INTO filed_reports (key, case_id, created_at)
    SELECT CAST(:report_key AS varchar), c.id, :now FROM c
    WHERE CAST(:report_key AS varchar) <> ''
)
SELECT id, reporter_id FROM c
""")


@cache
def _positional() -> tuple[str, tuple[str, ...]]:
    """The statement as asyncpg takes it ($1, $2 …) and the parameter names in that order,
    compiled once by SQLAlchemy's own asyncpg dialect."""
    compiled = _FILE_PG.compile(dialect=pg_asyncpg.dialect())
    return compiled.string, tuple(compiled.positiontup or ())



class ReporterRaced(Exception):
    """A brand-new reporter's first two reports were filed at the same moment: nothing was
    inserted, and the retry files under the same `number` (no gap in the day's numbers)."""

    def __init__(self, number: str) -> None:
        super().__init__(number)
        self.number = number


def _naive_utc(moment: datetime | None) -> datetime | None:
    """What UTCDateTime stores (the raw statement bypasses the column types)."""
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def file_params(case: Case, reporter: ReporterRef, rows: FiledRows,
                configured_room: tuple[str, str] | None, now: datetime) -> dict[str, Any]:
    """The statement's parameters: the case's columns and each of `rows` as arrays. The
    room is the grid file's fallback; the statement prefers a binding made in chat."""
    params: dict[str, Any] = {f"c_{name}": getattr(case, name) for name in _CASE_COLUMNS}
    for name in ("created_at", "updated_at", "response_due", "handling_due"):
        params[f"c_{name}"] = _naive_utc(params[f"c_{name}"])
    params["c_status"] = str(case.status)
    events, timers = rows.events, rows.timers
    params.update(
        channel=reporter.channel, external_id=reporter.external_id, phone=reporter.phone,
        now=_naive_utc(now),
        ev_actor=[e["actor"] for e in events], ev_action=[e["action"] for e in events],
        ev_from=[e["from_status"] for e in events], ev_to=[e["to_status"] for e in events],
        ev_note=[e["note"] for e in events],
        tm_kind=[r["kind"] for r in timers], tm_due=[_naive_utc(r["due_at"]) for r in timers],
        room_channel=configured_room[0] if configured_room else None,
        room_chat=configured_room[1] if configured_room else None,
        card_uuid=uuid.uuid4().hex, card_text=rows.card_text,
        card_payload=json.dumps(rows.card_payload, ensure_ascii=False),
        media=list(rows.media), media_kinds=[media_kind(ref) for ref in rows.media],
        report_key=rows.report_key,
    )
    return params


# The duplicate lookup's plain read before a filing (CaseFiling._any_duplicate): the points
# of open cases of the item, filed within the window, in the box around the report (the
# ix_cases_nearby index finds them). = ANY(array) is what PostgreSQL makes of an IN list.
_NEARBY_PG = """
SELECT lat, lon FROM cases
WHERE item_code = $1 AND status = ANY(CAST($2 AS varchar[])) AND created_at >= $3
  AND lat BETWEEN $4 AND $5 AND lon BETWEEN $6 AND $7
"""
_OPEN = sorted(status.value for status in OPEN)


def _asyncpg_of(session: AsyncSession | AsyncConnection) -> Any:
    """The asyncpg connection under a checked-out autocommit connection (no I/O: it is
    connected), else None: a session's transaction, or another driver."""
    if not isinstance(session, AsyncConnection) or session.dialect.driver != "asyncpg":
        return None
    sync = session.sync_connection
    return sync.connection.driver_connection if sync is not None else None


async def _on_driver(conn: AsyncConnection, driver: Any, sql: str, args: list[Any],
                     one: bool) -> Any:
    """Run a statement on the pooled connection's asyncpg connection itself: its first row
    (`one`) or all of them. SQLAlchemy's execution (its context, the greenlet hops, the
    result wrapping) cost more CPU than the statement's round trip (~0.4 ms a statement,
    benchmarks/RESULTS.md); asyncpg prepares each statement once per connection and keeps
    it. The connection is in autocommit (Database.autocommit_engine): each statement is its
    own transaction, as through SQLAlchemy. Errors read as they would through SQLAlchemy
    where a caller looks: a unique-key clash is an IntegrityError naming its constraint
    (CaseFiling.file retries on it); a broken connection is invalidated, not pooled again."""
    try:
        return await (driver.fetchrow(sql, *args) if one else driver.fetch(sql, *args))
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(sql, args, exc) from exc
    except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError):
        await conn.invalidate()
        raise


async def open_points_near(conn: AsyncConnection, item_code: str, since: datetime,
                           box: tuple[float, float, float, float],
                           ) -> list[tuple[float | None, float | None]] | None:
    """(lat, lon) of the open cases of `item_code` filed since `since` in `box` (drafts.
    near_box), read on the driver; None when `conn` is not asyncpg's (the caller asks
    SQLAlchemy)."""
    driver = _asyncpg_of(conn)
    if driver is None:
        return None
    rows = await _on_driver(conn, driver, _NEARBY_PG,
                            [item_code, _OPEN, _naive_utc(since), *box], one=False)
    return [(row[0], row[1]) for row in rows]


async def insert_filed(session: AsyncSession | AsyncConnection, case: Case,
                       reporter: ReporterRef, rows: FiledRows,
                       configured_room: tuple[str, str] | None, now: datetime) -> None:
    """Run the statement; sets case.id and case.reporter_id. The case object stays outside
    any session, like a committed one with expire_on_commit off."""
    params = file_params(case, reporter, rows, configured_room, now)
    driver = _asyncpg_of(session)
    if driver is not None:
        assert isinstance(session, AsyncConnection)
        sql, names = _positional()
        row = await _on_driver(session, driver, sql, [params[name] for name in names],
                               one=True)
    else:  # in a session's transaction (a duplicate was near): SQLAlchemy runs it
        row = (await session.execute(_FILE_PG, params)).first()
    if row is None:
        raise ReporterRaced(case.number)
    # Indexed, not unpacked: mypy types the items of an untyped (text) row as object.
    case.id, case.reporter_id = row[0], row[1]
