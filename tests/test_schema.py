"""The migrations and the models describe the same schema: a model change without its
migration (or the other way round) fails here, not on a deployment."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.models import Base
from bot.services import Services


def _drift(connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


async def test_models_match_the_migrations(services: Services) -> None:
    async with services.db.engine.connect() as conn:
        drift = await conn.run_sync(_drift)
    assert drift == [], f"models and migrations differ: {drift}"
