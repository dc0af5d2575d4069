"""`gridbot backup` / `gridbot restore`: the database and the media directory in one portable
archive (tar.gz) that moves between SQLite and PostgreSQL.

Layout of the archive:
    manifest.json        format, gridbot schema revision, source dialect, per table the row
                         count and SHA-256 of its file, per media file its SHA-256
    tables/<name>.jsonl  one JSON object per row, tables in foreign-key dependency order
    media/...            the media directory (photos kept as evidence)
    s3/...               with [media] store = "s3": every object of the bucket under the
                         configured prefix (the photos several servers share), by store key

Rows are read and written through SQLAlchemy with the tables reflected from the database, so
an archive made at an older revision restores into that revision and is then migrated to
head. Values JSON cannot hold (times, bytes, decimals) are tagged: {"$dt": "..."}.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table, func, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.config import Config
from bot.media_store import LocalStore, S3Store
from bot.storage import alembic_config, upgrade

FORMAT = 1
MEDIA_DIR = "var/media"  # where the channels keep photos (adapters/*.MEDIA_DIR)
VERSION_TABLE = "alembic_version"
BATCH = 500


class BackupError(Exception):
    """The archive or the target database is not fit: the message says why, plainly."""


@dataclass
class Manifest:
    revision: str
    dialect: str
    created_at: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → rows, sha256
    media: dict[str, str] = field(default_factory=dict)  # relative path → sha256
    format: int = FORMAT
    s3: dict[str, str] = field(default_factory=dict)  # bucket object's store key → sha256

    def as_json(self) -> bytes:
        return json.dumps(self.__dict__, ensure_ascii=False, indent=2).encode()


# -- values -----------------------------------------------------------------------------------

def encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, time):
        return {"$time": value.isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    return value


def decode_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        (tag, raw), = value.items()
        if tag == "$dt":
            parsed = datetime.fromisoformat(raw)
            # Columns hold naive UTC; an aware value (timestamptz) is brought to that form.
            return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
        if tag == "$date":
            return date.fromisoformat(raw)
        if tag == "$time":
            return time.fromisoformat(raw)
        if tag == "$b64":
            return base64.b64decode(raw)
        if tag == "$dec":
            return Decimal(raw)
    return value


# -- schema helpers ---------------------------------------------------------------------------

def head_revision(url: str) -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head() or ""


def known_revisions(url: str) -> set[str]:
    return {r.revision for r in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}


async def current_revision(conn: AsyncConnection) -> str | None:
    if VERSION_TABLE not in await conn.run_sync(_table_names):
        return None
    return (await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).scalar()


def _table_names(sync_conn: Any) -> list[str]:
    return inspect(sync_conn).get_table_names()


async def reflect(conn: AsyncConnection) -> list[Table]:
    """The data tables in foreign-key dependency order (parents first)."""
    metadata = MetaData()
    await conn.run_sync(lambda c: metadata.reflect(c))
    return [t for t in metadata.sorted_tables if t.name != VERSION_TABLE]


def _engine(url: str) -> AsyncEngine:
    # No pool tuning and no SQLite pragmas: one short-lived connection does all the work.
    return create_async_engine(url)


# -- backup -----------------------------------------------------------------------------------

def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


async def backup(config: Config, out: Path, media_dir: Path | None = None) -> Manifest:
    """Write the archive to `out` (via a temporary file: a failed backup leaves no half
    archive behind). The database must be at the head revision. `media_dir`: the
    deployment's var/media unless given."""
    url = config.database_url
    engine = _engine(url)
    media_root = media_dir or config.path(config.media.local_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".part", delete=False) as part:
        part_path = Path(part.name)
    try:
        # One transaction: every table is read from the same snapshot (PostgreSQL).
        async with engine.connect() as conn, conn.begin():
            revision = await current_revision(conn)
            if revision is None:
                raise BackupError("the database has no gridbot schema (run gridbot db upgrade)")
            if revision != head_revision(url):
                raise BackupError(f"the database is at revision {revision}, not at this "
                                  "gridbot's head: run `gridbot db upgrade` first")
            manifest = Manifest(revision, engine.dialect.name,
                                datetime.now(UTC).isoformat(timespec="seconds"))
            with tarfile.open(part_path, "w:gz") as tar:
                for table in await reflect(conn):
                    data, rows = await _dump_table(conn, table)
                    manifest.tables[table.name] = {
                        "rows": rows, "sha256": hashlib.sha256(data).hexdigest(),
                        "order": len(manifest.tables)}
                    _add_bytes(tar, f"tables/{table.name}.jsonl", data)
                for path in sorted(media_root.rglob("*")) if media_root.is_dir() else []:
                    if path.is_file():
                        rel = path.relative_to(media_root).as_posix()
                        data = path.read_bytes()
                        manifest.media[rel] = hashlib.sha256(data).hexdigest()
                        _add_bytes(tar, f"media/{rel}", data)
                if config.media.store == "s3":
                    await _archive_bucket(S3Store.from_config(config), tar, manifest)
                _add_bytes(tar, "manifest.json", manifest.as_json())
        part_path.replace(out)
        return manifest
    finally:
        part_path.unlink(missing_ok=True)
        await engine.dispose()


def _bucket_keys(store: S3Store) -> list[str]:
    """Every object under the store's prefix, as store keys (the prefix taken off)."""
    keys = []
    pages = store.client.get_paginator("list_objects_v2").paginate(
        Bucket=store.bucket, Prefix=store.prefix)
    for page in pages:
        keys += [obj["Key"][len(store.prefix):] for obj in page.get("Contents", [])]
    return sorted(keys)


async def _archive_bucket(store: S3Store, tar: tarfile.TarFile, manifest: Manifest) -> None:
    """The bucket's photos, one object at a time (never the whole bucket in memory)."""
    for key in await asyncio.to_thread(_bucket_keys, store):
        data = await store.get(key)
        if data is None:  # unsafe key (none of ours) or deleted since the listing
            continue
        manifest.s3[key] = hashlib.sha256(data).hexdigest()
        _add_bytes(tar, f"s3/{key}", data)


async def _dump_table(conn: AsyncConnection, table: Table) -> tuple[bytes, int]:
    order = list(table.primary_key.columns) or list(table.columns)
    buf = io.BytesIO()
    rows = 0
    result = await conn.stream(select(table).order_by(*order))
    async for row in result.mappings():
        record = {k: encode_value(v) for k, v in row.items()}
        buf.write(json.dumps(record, ensure_ascii=False, sort_keys=True).encode() + b"\n")
        rows += 1
    return buf.getvalue(), rows


# -- restore ----------------------------------------------------------------------------------

@dataclass
class Archive:
    manifest: Manifest
    tables: dict[str, bytes]
    media: dict[str, bytes]
    s3: dict[str, bytes] = field(default_factory=dict)


def read_archive(path: Path) -> Archive:
    """Read and verify every member against the manifest before anything is written."""
    try:
        return _read_archive(path)
    except BackupError:
        raise
    except (OSError, EOFError, zlib.error, tarfile.TarError, ValueError, TypeError,
            KeyError) as exc:  # a truncated or hand-edited archive
        raise BackupError(f"{path} cannot be read as a gridbot backup: {exc}") from exc


def _read_archive(path: Path) -> Archive:
    try:
        tar = tarfile.open(path, "r:gz")  # noqa: SIM115 - closed by the `with` below
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{path} is not a gridbot backup (tar.gz): {exc}") from exc
    with tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        if "manifest.json" not in members:
            raise BackupError(f"{path} has no manifest.json: not a gridbot backup")
        raw = json.loads(_read(tar, members["manifest.json"]))
        if raw.get("format") != FORMAT:
            raise BackupError(f"backup format {raw.get('format')} is not supported")
        manifest = Manifest(**raw)
        tables = {}
        for name, info in manifest.tables.items():
            data = _read(tar, members.get(f"tables/{name}.jsonl"))
            if hashlib.sha256(data).hexdigest() != info["sha256"]:
                raise BackupError(f"table {name}: checksum mismatch (the archive is damaged)")
            tables[name] = data
        media = _files(tar, members, "media", manifest.media)
        bucket = _files(tar, members, "s3", manifest.s3)
    return Archive(manifest, tables, media, bucket)


def _files(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], folder: str,
           listed: dict[str, str]) -> dict[str, bytes]:
    """The photos the manifest lists under `folder`, each checked against its digest."""
    files = {}
    for rel, digest in listed.items():
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts or not rel:
            raise BackupError(f"media path {rel!r} points outside the media folder")
        data = _read(tar, members.get(f"{folder}/{rel}"))
        if hashlib.sha256(data).hexdigest() != digest:
            raise BackupError(f"media {rel}: checksum mismatch (the archive is damaged)")
        files[rel] = data
    return files


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo | None) -> bytes:
    if member is None:
        raise BackupError("the archive lacks a file its manifest lists (incomplete backup)")
    handle = tar.extractfile(member)
    if handle is None:
        raise BackupError(f"{member.name} cannot be read")
    return handle.read()


def _rows(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.splitlines():
        if line.strip():
            yield {k: decode_value(v) for k, v in json.loads(line).items()}


async def _row_count(conn: AsyncConnection, tables: list[Table]) -> int:
    total = 0
    for table in tables:
        total += (await conn.execute(select(func.count()).select_from(table))).scalar() or 0
    return total


async def restore(config: Config, archive_path: Path, force: bool = False,
                  media_dir: Path | None = None) -> Manifest:
    """Load the archive into the configured database and media folder, then migrate to
    head. Refuses an archive from a newer gridbot, and a database that holds data unless
    `force` (which replaces that data)."""
    archive = read_archive(archive_path)
    manifest = archive.manifest
    url = config.database_url
    if manifest.revision not in known_revisions(url):
        raise BackupError(f"the backup is at schema revision {manifest.revision}, which this "
                          "gridbot does not know: restore it with the newer gridbot that "
                          "made it")
    engine = _engine(url)
    try:
        async with engine.connect() as conn:
            revision = await current_revision(conn)
            existing = await reflect(conn) if revision else []
            if revision and not force and await _row_count(conn, existing):
                raise BackupError("the database already holds data: restore into an empty "
                                      "database, or pass --force to replace it")
            await conn.rollback()
        if revision and revision != manifest.revision:
            if revision not in known_revisions(url):
                raise BackupError(f"the database is at an unknown revision {revision}")
            await _downgrade(url, manifest.revision)
        await upgrade(url, manifest.revision)
        async with engine.begin() as conn:
            tables = {t.name: t for t in await reflect(conn)}
            unknown = set(manifest.tables) - set(tables)
            if unknown:
                raise BackupError(f"tables {sorted(unknown)} are not in schema revision "
                                  f"{manifest.revision}: the archive does not match it")
            for table in reversed(list(tables.values())):  # children first
                await conn.execute(table.delete())
            ordered = sorted(manifest.tables, key=lambda n: manifest.tables[n]["order"])
            for name in ordered:
                await _load_table(conn, tables[name], archive.tables[name])
            for name in ordered:  # every row arrived, or nothing is committed
                got = (await conn.execute(select(func.count()).select_from(tables[name])))\
                    .scalar()
                if got != manifest.tables[name]["rows"]:
                    raise BackupError(f"table {name}: {got} rows restored, the backup has "
                                      f"{manifest.tables[name]['rows']}")
            if engine.dialect.name == "postgresql":
                await _reset_sequences(conn, list(tables.values()))
            await _raise_case_counters(conn, tables)
        await upgrade(url, "head")
    finally:
        await engine.dispose()
    local = media_dir or config.path(config.media.local_dir)
    _write_media(local, archive.media)
    if archive.s3:
        # The bucket's photos go back where this deployment keeps photos: its bucket, or
        # (restored onto one server) its media folder, under the same keys.
        store = S3Store.from_config(config) if config.media.store == "s3" else LocalStore(local)
        for key, data in archive.s3.items():
            await store.put(key, data)
    return manifest


async def _downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)


async def _load_table(conn: AsyncConnection, table: Table, data: bytes) -> None:
    batch: list[dict[str, Any]] = []
    columns = set(table.columns.keys())
    for row in _rows(data):
        extra = set(row) - columns
        if extra:
            raise BackupError(f"table {table.name}: columns {sorted(extra)} are not in the "
                              "schema")
        batch.append(row)
        if len(batch) >= BATCH:
            await conn.execute(insert(table), batch)
            batch = []
    if batch:
        await conn.execute(insert(table), batch)


async def _reset_sequences(conn: AsyncConnection, tables: list[Table]) -> None:
    """Rows came with their ids: move each serial sequence past the largest one."""
    for table in tables:
        for column in table.primary_key.columns:
            seq = (await conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                      {"t": table.name, "c": column.name})).scalar()
            if seq:
                await conn.execute(text(
                    f'SELECT setval(:s, COALESCE((SELECT MAX("{column.name}") FROM '
                    f'"{table.name}"), 0) + 1, false)'), {"s": seq})


_CASE_NUMBER = re.compile(r"^[A-Z]*(\d{8})-(\d+)$")


async def _raise_case_counters(conn: AsyncConnection, tables: dict[str, Table]) -> None:
    """SQLite numbers cases from case_counters, PostgreSQL from Redis (which a backup does
    not hold): after a restore each day's counter must be past that day's highest number,
    or the next filing of that day would clash."""
    cases, counters = tables.get("cases"), tables.get("case_counters")
    if cases is None or counters is None:
        return
    highest: dict[str, int] = {}
    number: str | None  # cases.number (a reflected Table: its columns are untyped)
    for number in (await conn.execute(select(cases.c.number))).scalars():
        found = _CASE_NUMBER.match(number or "")
        if found:
            day, seq = found.group(1), int(found.group(2))
            highest[day] = max(highest.get(day, 0), seq)
    stored: dict[str, int] = dict(
        (await conn.execute(select(counters.c.day, counters.c.value))).all())
    for day, seq in highest.items():
        if day not in stored:
            await conn.execute(insert(counters).values(day=day, value=seq))
        elif stored[day] < seq:
            await conn.execute(counters.update().where(counters.c.day == day)
                               .values(value=seq))


def _write_media(root: Path, media: dict[str, bytes]) -> None:
    for rel, data in media.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
