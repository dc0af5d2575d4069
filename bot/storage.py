"""Database engine, sessions and schema migrations."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_sync(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision`. Alembic drives its own event loop, so call off-loop."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


@functools.cache
def _heads() -> frozenset[str]:
    """The migrations' head revisions (read from the version files once per process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("")).get_heads())


async def _applied(url: str) -> frozenset[str] | None:
    """The revisions the database records, or None when it cannot say (no database file, no
    version table, not reachable: the upgrade then runs and reports what is wrong)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if not path or path == ":memory:" or not Path(path).is_file():
            return None
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(row[0] for row in rows)
    except Exception:  # any failure: Alembic does the real work and says what is wrong
        return None
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision`. A database already at head is only read (one query),
    not handed to Alembic, whose start-up (config, version files, its own engine and event
    loop) every server and CLI start would otherwise pay for nothing."""
    if revision == "head" and await _applied(url) == _heads():
        return
    await asyncio.to_thread(upgrade_sync, url, revision)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers work while one writer files a case; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable, no fsync per commit
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        # No pool_pre_ping: it costs a round trip per checkout (~0.7 ms of CPU per filing,
        # measured with benchmarks/city_day.py). After a PostgreSQL restart the first request
        # to meet a dead connection fails, and SQLAlchemy then recycles the whole pool.
        kwargs = {} if url.startswith("sqlite") else {"pool_size": 10, "max_overflow": 10}
        self.engine: AsyncEngine = create_async_engine(url, echo=echo, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.session: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )
        # Statements that are atomic by themselves (filing a case is one) skip the BEGIN and
        # COMMIT round trips here. A small pool of its own, set to autocommit once per
        # connection rather than switched on every checkout.
        self.autocommit_engine: AsyncEngine | None = None
        if not url.startswith("sqlite"):
            self.autocommit_engine = create_async_engine(
                url, echo=echo, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=10)
        # Sessions for plain reads and for work that is one statement: on PostgreSQL their
        # BEGIN and COMMIT / ROLLBACK cost no round trips; on SQLite they are ordinary.
        self.single: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.autocommit_engine or self.engine, expire_on_commit=False)
        # SQLite's deferred transactions let two readers claim the same row before either
        # writes; gridbot runs one process on SQLite, so a process lock makes claims exclusive.
        self._claim_lock = asyncio.Lock() if url.startswith("sqlite") else None

    def serialised(self) -> contextlib.AbstractAsyncContextManager[object]:
        """Wrap read-then-write transactions (claims, worker actions); on PostgreSQL row locks
        do this job."""
        return self._claim_lock if self._claim_lock is not None else contextlib.nullcontext()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def close(self) -> None:
        if self.autocommit_engine is not None:
            await self.autocommit_engine.dispose()
        await self.engine.dispose()
