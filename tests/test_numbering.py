"""bot/numbering.py: case numbers, one sequence per local day — a counter row on SQLite, a
Redis counter on PostgreSQL that is raised past what the database holds when it is new or
after a clash."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.cases import CaseDraft, ReporterRef
from bot.kv import PREFIX
from bot.models import CaseCounter
from bot.numbering import KEY_TTL_S, CaseNumbers, is_number_clash
from bot.services import Services
from tests.conftest import FakeClock

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("message", "clash"), [
    ('duplicate key value violates unique constraint "cases_number_key"', True),
    ("UNIQUE constraint failed: cases.number", True),
    ('duplicate key value violates unique constraint "filed_reports_pkey"', False),
    ("NOT NULL constraint failed: cases.text", False),
])
def test_only_the_unique_number_index_is_a_clash(message: str, clash: bool) -> None:
    assert is_number_clash(IntegrityError("INSERT …", {}, Exception(message))) is clash


def test_numbers_follow_the_local_day_and_the_prefix() -> None:
    numbers = CaseNumbers("sqlite", None, "CC", TZ)
    assert not numbers.use_redis
    late_utc = datetime(2026, 11, 22, 17, 30, tzinfo=UTC)  # already the 23rd in Foshan
    assert numbers.day(late_utc) == "20261123"
    assert numbers.format("20261123", 7) == "CC20261123-0007"
    assert numbers.format("20261123", 12345) == "CC20261123-12345"  # grows past four digits


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_sqlite_counts_in_a_row_per_day(services: Services) -> None:
    numbers = services.cases.numbers
    assert not numbers.use_redis
    monday, tuesday = (datetime(2030, 1, d, 3, 0, tzinfo=UTC) for d in (7, 8))
    taken = []
    for now in (monday, monday, tuesday, monday):
        async with services.db.session() as session, session.begin():
            taken.append(await numbers.take(session, now))
    assert taken == ["20300107-0001", "20300107-0002", "20300108-0001", "20300107-0003"]


@pytest.mark.parametrize("clocked", ["postgres+redis"], indirect=True)
async def test_redis_counts_on_postgres_and_resyncs_past_the_database(
        clocked: Services, clock: FakeClock) -> None:
    s = clocked
    numbers = s.cases.numbers
    assert numbers.use_redis and numbers.redis is not None
    clock.now = datetime(2030, 1, 7, 3, 0, tzinfo=UTC)
    key = f"{PREFIX}caseno:20300107"
    # A day gridbot counted in the database before (the SQLite scheme's row): the new
    # Redis counter starts past it.
    async with s.db.session() as session, session.begin():
        session.add(CaseCounter(day="20300107", value=40))
    filing = await s.cases.file(CaseDraft(text="报刊亭破损", item_code="C0121",
                                          grid_code="440604001030103"),
                                ReporterRef("test", "u1"))
    assert filing.case.number == "20300107-0041"
    assert 0 < await numbers.redis.ttl(key) <= KEY_TTL_S
    async with s.db.autocommit_engine.connect() as conn:
        assert await numbers.take(conn, clock()) == "20300107-0042"
        # Redis restored from an old snapshot: the counter is behind the stored 0041, so its
        # numbers may clash; a resync raises it past the highest stored one.
        await numbers.redis.set(key, 2)
        assert await numbers.take(conn, clock()) == "20300107-0003"
        assert await numbers.take(conn, clock(), resync=True) == "20300107-0042"
    # Filing does that by itself: after a clash it retries with a resynced number.
    await numbers.redis.set(key, 40)
    again = await s.cases.file(CaseDraft(text="售货亭坏了", item_code="C0137",
                                         grid_code="440604001030103"),
                               ReporterRef("test", "u2"))
    assert again.case.number == "20300107-0042"


@pytest.mark.parametrize("clocked", ["postgres+redis"], indirect=True)
async def test_the_days_first_number_is_kept_when_others_filed_meanwhile(
        clocked: Services, clock: FakeClock) -> None:
    """The day's first filing reads the database's floor while other processes already took
    2 and 3 from the new counter and stored them: it keeps its 1 (no gap, no jump ahead)."""
    s = clocked
    clock.now = datetime(2030, 1, 7, 3, 0, tzinfo=UTC)
    shared = s.cases.numbers

    class Overtaken(CaseNumbers):
        async def _stored(self, session: AsyncSession | AsyncConnection,
                          day: str) -> tuple[set[int], int]:
            for text, item in (("报刊亭破损", "C0121"), ("售货亭坏了", "C0137")):
                await s.cases.file(CaseDraft(text=text, item_code=item,
                                             grid_code="440604001030103"),
                                   ReporterRef("test", "u1"))
            return await super()._stored(session, day)

    first = Overtaken("postgresql", shared.redis, shared.prefix, shared.tz)
    async with s.db.autocommit_engine.connect() as conn:
        assert await first.take(conn, clock()) == "20300107-0001"
        assert await shared.take(conn, clock()) == "20300107-0004"
