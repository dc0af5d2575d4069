"""Labelled examples from people's choices: a confirmation or a correction of the model's
suggestion (chat, hotline console, suggest API) becomes a row `gridbot train --from-cases`
learns from."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.models import TrainingExample
from bot.storage import Database


async def remember(db: Database, text: str, item_code: str, source: str,
                   suggested_code: str | None) -> None:
    async with db.session() as session, session.begin():
        session.add(TrainingExample(text=text, item_code=item_code, source=source,
                                    suggested_code=suggested_code,
                                    created_at=datetime.now(UTC)))
