"""Grids in the database: imported once (`gridbot grids import`), read by every process."""

from __future__ import annotations

import json

from shapely.geometry import mapping, shape
from sqlalchemy import delete, select

from bot.grids import Area
from bot.models import AreaRow
from bot.storage import Database


async def replace_areas(db: Database, areas: list[Area]) -> None:
    async with db.session() as session, session.begin():
        await session.execute(delete(AreaRow))
        session.add_all(
            AreaRow(code=a.code, name=a.name, level=a.level, parent=a.parent,
                    geometry=json.dumps(mapping(a.geometry)), properties=a.properties)
            for a in areas
        )


async def load_areas(db: Database) -> list[Area]:
    async with db.session() as session:
        rows = (await session.execute(select(AreaRow))).scalars().all()
    return [
        Area(r.code, r.name, r.level, r.parent, shape(json.loads(r.geometry)), r.properties)
        for r in rows
    ]
