"""Redis state (real server and the embedded store) and database migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import delete, inspect

from bot import kv
from bot.services import Services
from bot.storage import Database, upgrade


async def test_dialog_state_round_trip_and_expiry(services: Services) -> None:
    store = kv.DialogStore(services.redis, ttl_s=1)
    await store.save("test", "u1", {"step": "confirm", "text": "井盖丢了"})
    assert (await store.load("test", "u1"))["text"] == "井盖丢了"
    assert await store.load("test", "u2") == {}  # per user
    assert await store.load("wechat", "u1") == {}  # per channel
    loop = asyncio.get_running_loop()
    gone_by = loop.time() + 1.6  # a one-second TTL, with room for a loaded machine
    while await store.load("test", "u1") != {} and loop.time() < gone_by:
        await asyncio.sleep(0.05)
    assert await store.load("test", "u1") == {}


async def test_corrupt_state_restarts_the_conversation(services: Services) -> None:
    await services.redis.set("gridbot:dialog:test:u3", "{not json")
    assert await services.dialogs.load("test", "u3") == {}


async def test_dedupe_remembers_each_message_once(services: Services) -> None:
    assert await services.dedupe.first_time("wechat", "msg-1")
    assert not await services.dedupe.first_time("wechat", "msg-1")
    assert await services.dedupe.first_time("telegram", "msg-1")


async def test_dedupe_is_atomic_under_concurrency(services: Services) -> None:
    results = await asyncio.gather(*(services.dedupe.first_time("w", "same") for _ in range(20)))
    assert results.count(True) == 1


async def test_migrations_create_every_table(services: Services) -> None:
    async with services.db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"cases", "case_events", "case_media", "reporters", "outbox", "areas",
            "case_counters", "training_examples", "alembic_version"} <= tables
    await upgrade(services.db.url)  # running again is harmless


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:///{tmp}/new/dir/x.db"])
async def test_sqlite_file_is_created_with_its_folder(tmp_path, url: str) -> None:
    url = url.format(tmp=tmp_path)
    await upgrade(url)
    db = Database(url)
    async with db.engine.connect() as conn:
        assert "cases" in await conn.run_sync(lambda c: inspect(c).get_table_names())
    await db.close()
    assert (tmp_path / "new/dir/x.db").exists()


async def test_processes_starting_together_seed_the_grids_once(services: Services) -> None:
    """Two server processes on a fresh database both find no grids and both try to seed."""
    from bot.grid_store import load_areas, seed_areas
    from bot.models import AreaRow

    areas = await load_areas(services.db)
    async with services.db.session() as session, session.begin():
        await session.execute(delete(AreaRow))
    # On PostgreSQL a second engine, as a second process would have; SQLite runs one process.
    sqlite = services.db.dialect == "sqlite"
    other = services.db if sqlite else Database(services.db.url)
    try:
        won = await asyncio.gather(seed_areas(services.db, areas), seed_areas(other, areas))
    finally:
        if not sqlite:
            await other.close()
    assert sorted(won) == [False, True]
    assert len(await load_areas(services.db)) == len(areas)


async def test_upgrade_hands_only_a_database_behind_head_to_alembic(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.storage as storage

    url = f"sqlite+aiosqlite:///{tmp_path}/behind.db"
    await upgrade(url, "0008")
    ran: list[str] = []
    real = storage.upgrade_sync

    def counted(u: str, revision: str = "head") -> None:
        ran.append(revision)
        real(u, revision)

    monkeypatch.setattr(storage, "upgrade_sync", counted)
    await upgrade(url)  # one revision behind: Alembic migrates
    assert ran == ["head"]
    await upgrade(url)  # at head: the version is read, Alembic is not started
    assert ran == ["head"]
    await upgrade(f"sqlite+aiosqlite:///{tmp_path}/new.db")  # no database yet: Alembic
    assert ran == ["head", "head"]
