"""Migrated databases built once per test session; each test starts from a clean copy.

Building Services on an empty database runs every Alembic migration and seeds the grid
areas: about a second a build on this machine, paid twice by every test parametrised over
both storage set-ups. Here the first build of a session does that work once, into a
template, and every test starts from it:

- SQLite: the template file is copied into the test's tmp_path (a few milliseconds).
- PostgreSQL: the session gets a database of its own (`<test database>_s<pid>`, so parallel
  runs on one server do not clobber each other), migrated and seeded once. Before each test
  the rows the template did not have are deleted and the sequences set back, after checking
  that the schema (a fingerprint of the catalog) and the seeded rows (the grid areas) are
  still the template's. When a test changed either (a downgrade, a restore, a grid import),
  the next one starts from an empty schema and build_services migrates and seeds it again,
  as every test used to.

build_services still runs its own upgrade(), which then finds the schema at head and only
reads the version.
"""

from __future__ import annotations

import contextlib
import graphlib
import os
import shutil
import sqlite3
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

# Everything in the public schema that a migration can change, in one comparable digest.
_SCHEMA_FINGERPRINT = """
SELECT md5(coalesce(string_agg(item, E'\\n' ORDER BY item), '')) FROM (
  SELECT 'rel ' || c.relname || ' ' || c.relkind::text AS item
    FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'col ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'idx ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL
  SELECT 'con ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'fn ' || p.oid::regprocedure::text FROM pg_proc p
   WHERE p.pronamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'trg ' || t.tgrelid::regclass::text || ' ' || t.tgname FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
) parts
"""
_VERSION = "SELECT string_agg(version_num, ',' ORDER BY version_num) FROM alembic_version"
_TABLES = ("SELECT relname FROM pg_class "
           "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')")
_FOREIGN_KEYS = ("SELECT r.relname AS referencing, f.relname AS referenced "
                 "FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid "
                 "JOIN pg_class f ON f.oid = k.confrelid "
                 "WHERE k.contype = 'f' AND k.connamespace = 'public'::regnamespace")
_SEQUENCES = ("SELECT sequencename, start_value, last_value FROM pg_sequences "
              "WHERE schemaname = 'public'")
_VERSION_TABLE = "alembic_version"  # part of the fingerprint
_EMPTY_SCHEMA = "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
_SESSION_SETTINGS = ("synchronous_commit = off", "jit = off")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _digest(table: str) -> str:
    """The md5 of a table's rows, as an SQL expression."""
    return (f"(SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
            f"FROM {_quote(table)} t)")


def _dsn(url: str, database: str | None = None) -> str:
    """asyncpg's form of a SQLAlchemy URL (postgresql+asyncpg://...)."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=10)


class DatabaseTemplates:
    """Per-session templates. `build` is build_services (passed in so this module imports
    nothing of the product at import time)."""

    def __init__(self, root: Path, model_dir: Path, postgres_url: str, make_config,
                 build) -> None:
        self.root = root
        self.model_dir = model_dir
        self.postgres_url = postgres_url
        self._make_config = make_config
        self._build = build
        self._sqlite: Path | None = None
        self._pg_url: str | None = None  # the session's database
        self._pg_created = ""  # the database this session created (and drops at its end)
        self._pg_check = ""  # a query for the schema's fingerprint and the filled tables' rows
        self._pg_state: tuple[str, ...] = ()  # its answer on the template
        self._pg_reset = ""  # deletes the rows the template has not, sets sequences back

    # -- SQLite ---------------------------------------------------------------------------

    async def sqlite_copy(self, target: Path) -> None:
        """Put a migrated, seeded database at `target` (the path make_config points at)."""
        if self._sqlite is None:
            directory = self.root / "sqlite"
            directory.mkdir(parents=True, exist_ok=True)
            built = await self._build(self._make_config(directory, self.model_dir))
            await built.close()
            path = directory / "gridbot.db"
            # Fold the write-ahead log into the file, so the copy is the whole database.
            with contextlib.closing(sqlite3.connect(path)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self._sqlite = path
        if not target.exists():  # a second Services in the same test shares the database
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._sqlite, target)

    # -- PostgreSQL -----------------------------------------------------------------------

    async def postgres_clean(self) -> str:
        """The URL of the session's database, holding the migrated schema, the seeded areas
        and no other rows (or, after a test changed the schema, an empty schema)."""
        if self._pg_url is None:
            url = await self._create_session_database()
            conn = await _connect(_dsn(url))
            try:
                await conn.execute(_EMPTY_SCHEMA)
            finally:
                await conn.close()
            built = await self._build(self._make_config(self.root / "postgres", self.model_dir,
                                                        url))
            await built.close()
            await self._remember(url)
            self._pg_url = url
        await self._clean(self._pg_url)
        return self._pg_url

    async def _create_session_database(self) -> str:
        name = f"{make_url(self.postgres_url).database}_s{os.getpid()}"
        try:
            admin = await _connect(_dsn(self.postgres_url, "postgres"))
        except (OSError, asyncpg.PostgresError):  # no maintenance database: use the test one
            return self.postgres_url
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {_quote(name)}")
            await admin.execute(f"CREATE DATABASE {_quote(name)}")
            # A throw-away database: a commit need not wait for the WAL to reach the disk (a
            # crash loses the last commits, never consistency), and no query is worth JIT
            # compiling (asyncpg's type look-up on each new connection otherwise is).
            for setting in _SESSION_SETTINGS:
                await admin.execute(f"ALTER DATABASE {_quote(name)} SET {setting}")
        except asyncpg.PostgresError:  # no right to create databases: use the configured one
            return self.postgres_url
        finally:
            await admin.close()
        self._pg_created = name
        return make_url(self.postgres_url).set(database=name).render_as_string(
            hide_password=False)

    async def _remember(self, url: str) -> None:
        """Note what the template holds: its schema, the rows the build wrote (grid areas;
        any a migration inserts) and its sequences' positions."""
        conn = await _connect(_dsn(url))
        try:
            tables = {r["relname"] for r in await conn.fetch(_TABLES)} - {_VERSION_TABLE}
            filled = [t for t in sorted(tables)
                      if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {_quote(t)})")]
            # One query answers "is this still the template?": schema, version, filled rows.
            self._pg_check = "SELECT " + ", ".join(
                [f"({_SCHEMA_FINGERPRINT})", f"({_VERSION})", *map(_digest, filled)])
            self._pg_state = tuple(await conn.fetchrow(self._pg_check))
            graph: dict[str, set[str]] = {t: set() for t in tables if t not in filled}
            for referencing, referenced in await conn.fetch(_FOREIGN_KEYS):
                if referencing != referenced and {referencing, referenced} <= graph.keys():
                    graph[referenced].add(referencing)  # delete the referencing rows first
            statements = [f"DELETE FROM {_quote(t)}"
                          for t in graphlib.TopologicalSorter(graph).static_order()]
            sequences = await conn.fetch(_SEQUENCES)
            if sequences:
                statements.append("SELECT " + ", ".join(
                    f"setval('public.{_quote(name)}', {start if last is None else last}, "
                    f"{'false' if last is None else 'true'})"
                    for name, start, last in sequences))
            self._pg_reset = "; ".join(statements)
        finally:
            await conn.close()

    async def _clean(self, url: str) -> None:
        conn = await _connect(_dsn(url))
        try:
            try:
                same = tuple(await conn.fetchrow(self._pg_check)) == self._pg_state
            except asyncpg.PostgresError:  # a table is gone: not the template's schema
                same = False
            if same:
                await conn.execute(self._pg_reset)  # one implicit transaction
            else:  # start over: build_services migrates and seeds again
                await conn.execute(_EMPTY_SCHEMA)
        finally:
            await conn.close()

    async def close(self) -> None:
        """Drop the session's database, if this session created it."""
        if not self._pg_created:
            return
        admin = await _connect(_dsn(self.postgres_url, "postgres"))
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {_quote(self._pg_created)} WITH (FORCE)")
        finally:
            await admin.close()
