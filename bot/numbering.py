"""Human-friendly case numbers, one sequence per local day: 20261122-0007 (with an optional
prefix, CC20261122-0007). Unique always; gaps are allowed (a filing that rolls back after
taking its number leaves one).

PostgreSQL + Redis (the multi-process set-up): the day's counter is a Redis INCR — no row
lock, no extra database round trip, so filings in every process run side by side and numbers
still follow filing order. Redis is not the record: when a day's key is new (first filing of
the day, or Redis lost its data) the counter is raised past the highest number the database
already holds for that day, and the unique index on cases.number stays the last guard — a
clash (e.g. Redis restored from an old snapshot) makes the caller `resync` and retry.

SQLite (one process, one writer): the day's row in case_counters, upserted inside the
filing's own transaction, as before.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.kv import PREFIX
from bot.models import Case, CaseCounter

KEY_TTL_S = 3 * 24 * 3600  # a day's counter is needed for that day only


def is_number_clash(exc: IntegrityError) -> bool:
    """The unique index on cases.number refused the row (PostgreSQL or SQLite wording)."""
    text = str(exc.orig)
    return "cases_number_key" in text or "cases.number" in text


class CaseNumbers:
    def __init__(self, dialect: str, redis: aioredis.Redis | None, prefix: str,
                 tz: ZoneInfo) -> None:
        self.use_redis = dialect == "postgresql" and redis is not None
        self.redis = redis
        self.prefix = prefix
        self.tz = tz

    def day(self, now: datetime) -> str:
        return now.astimezone(self.tz).strftime("%Y%m%d")

    def format(self, day: str, value: int) -> str:
        return f"{self.prefix}{day}-{value:04d}"

    async def take(self, session: AsyncSession | AsyncConnection, now: datetime,
                   resync: bool = False) -> str:
        """The next number for `now`'s local day. `resync`: the last number clashed with a
        stored case, so check the database before trusting the counter. `session` may be a
        bare connection where Redis keeps the counter (it is read only to resync)."""
        day = self.day(now)
        if not self.use_redis:
            assert isinstance(session, AsyncSession)
            return self.format(day, await self._counter_row(session, day))
        assert self.redis is not None
        key = f"{PREFIX}caseno:{self.prefix}{day}"
        value = int(await self.redis.incr(key))
        if value == 1 or resync:
            if value == 1:
                await self.redis.expire(key, KEY_TTL_S)
            stored, floor = await self._stored(session, day)
            # Read after the floor: every number this counter handed out before then is at
            # most `current`. Numbers above it in the database came from elsewhere (Redis lost
            # or rewound); numbers at or below it may be other filings of this very counter
            # (they took 2, 3 … and stored them while this first one read the floor), and
            # jumping past those would leave a gap for nothing.
            current = int(await self.redis.get(key) or value)
            if floor > current or value in stored:
                # Every INCR/INCRBY result is distinct, so this one is ours.
                value = int(await self.redis.incrby(key, max(floor - current, 0) + 1))
        return self.format(day, value)

    async def _counter_row(self, session: AsyncSession, day: str) -> int:
        """Per-day row; the upsert locks it, so concurrent filings never clash."""
        bind = session.get_bind()
        insert = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(CaseCounter).values(day=day, value=1).on_conflict_do_update(
            index_elements=["day"], set_={"value": CaseCounter.value + 1}
        ).returning(CaseCounter.value)
        return int((await session.execute(stmt)).scalar_one())

    async def _stored(self, session: AsyncSession | AsyncConnection,
                      day: str) -> tuple[set[int], int]:
        """The numbers of `day` the database holds, and the highest it knows: its cases', or
        the counter row the SQLite scheme (and gridbot before Redis numbering) kept. Runs once
        a day and after a clash, so a scan of the day's numbers is affordable."""
        stem = f"{self.prefix}{day}-"
        numbers = (await session.execute(
            select(Case.number).where(Case.number.like(stem.replace("%", r"\%") + "%"))
        )).scalars()
        stored = {int(n[len(stem):]) for n in numbers if n[len(stem):].isdigit()}
        counted = (await session.execute(
            select(func.max(CaseCounter.value)).where(CaseCounter.day == day))).scalar()
        return stored, max(max(stored, default=0), counted or 0)
