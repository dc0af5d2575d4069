"""When each person last wrote to us, per channel: WeChat lets an official account message a
user freely for 48 hours after their last message. Kept in the database, because a restart
of a server on the embedded store must not close every window (and with it every status
push to people without a subscription template)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.models import ContactWindow
from bot.storage import Database


class ContactWindows:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def note(self, channel: str, user: str, at: datetime) -> None:
        """Record an inbound message (an upsert: one row per person and channel)."""
        values = {"channel": channel, "external_id": user, "last_inbound_at": at}
        keys = ["channel", "external_id"]
        newer = {"last_inbound_at": at}
        later = ContactWindow.last_inbound_at < at  # (never move the mark back)
        statement: Any  # each dialect's insert has its own on_conflict_do_update
        if self.db.dialect == "postgresql":
            statement = pg_insert(ContactWindow).values(**values).on_conflict_do_update(
                index_elements=keys, set_=newer, where=later)
        else:
            statement = sqlite_insert(ContactWindow).values(**values).on_conflict_do_update(
                index_elements=keys, set_=newer, where=later)
        async with self.db.session() as session, session.begin():
            await session.execute(statement)

    async def last(self, channel: str, user: str) -> datetime | None:
        async with self.db.session() as session:
            return (await session.execute(select(ContactWindow.last_inbound_at).where(
                ContactWindow.channel == channel, ContactWindow.external_id == user))).scalar()
