"""The environment for `gridbot …` commands run in-process (tests/gridbot_cli.py) against a
database of the test's own: a copy of the session's migrated SQLite template, so a command
that upgrades first finds nothing to do, and the embedded store instead of Redis."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.templates import DatabaseTemplates


def sqlite_env(tmp_path: Path, templates: DatabaseTemplates, **extra: str) -> dict[str, str]:
    """os.environ with the database, Redis and model folder pointed into `tmp_path`."""
    database = tmp_path / "gridbot.db"
    asyncio.run(templates.sqlite_copy(database))
    return {**os.environ, "GRIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "GRIDBOT_REDIS_URL": "", "GRIDBOT_NLP_MODEL_DIR": str(tmp_path / "models"),
            **extra}
