"""Grids in the database: imported once (`gridbot grids import`), read by every process."""

from __future__ import annotations

import json
from functools import lru_cache

from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import delete, func, select, text

from bot.grids import Area
from bot.models import AreaRow
from bot.storage import Database

SEED_LOCK = 7_311_001  # pg_advisory_xact_lock key: one process seeds the grids


def _rows(areas: list[Area]) -> list[AreaRow]:
    return [AreaRow(code=a.code, name=a.name, level=a.level, parent=a.parent,
                    geometry=json.dumps(mapping(a.geometry)), properties=a.properties)
            for a in areas]


async def replace_areas(db: Database, areas: list[Area]) -> None:
    async with db.session() as session, session.begin():
        await session.execute(delete(AreaRow))
        session.add_all(_rows(areas))


async def seed_areas(db: Database, areas: list[Area]) -> bool:
    """Store `areas` if the table is empty; False if another process got there first.
    Several server processes start at once on a fresh database: on PostgreSQL a transaction
    lock makes the check-then-insert theirs alone (SQLite runs one process)."""
    async with db.serialised(), db.session() as session, session.begin():
        if db.dialect == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                  {"key": SEED_LOCK})
        if (await session.execute(select(func.count()).select_from(AreaRow))).scalar_one():
            return False
        session.add_all(_rows(areas))
    return True


async def load_areas(db: Database) -> list[Area]:
    async with db.session() as session:
        rows = (await session.execute(select(AreaRow))).scalars().all()
    return [Area(r.code, r.name, r.level, r.parent, _geometry(r.geometry), r.properties)
            for r in rows]


@lru_cache(maxsize=8192)
def _geometry(geojson: str) -> BaseGeometry:
    """Shapely geometries are immutable: every process's Services, CLI commands and reloads
    share one parse of each stored polygon (the parse was most of a grid load)."""
    return shape(json.loads(geojson))
