"""Who hears of their case by SMS: hotline callers who gave a mobile number and agreed.

The consent is kept by the reporter's opaque id (hotline reporters are call-<random>), so it
can be given before the case is filed and the very first update already goes by SMS. The
number stays in reporters.phone; `phone_for` is the one read of it for sending, and only
while the consent stands.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Reporter, SmsConsent
from bot.storage import Database

SMS_CHANNEL = "sms"
HOTLINE = "hotline"  # the channel whose reporters may ask for SMS updates
# A mainland mobile number, bare or with +86 / 0086 / 86 (a landline cannot take an SMS).
_MOBILE = re.compile(r"^(?:\+?86|0086)?(1[3-9]\d{9})$")


def mobile_number(phone: str) -> str | None:
    """The number in E.164 (+8613812345678) when it is a mainland mobile, else None."""
    found = _MOBILE.fullmatch(phone or "")
    return f"+86{found.group(1)}" if found else None


def masked(phone: str) -> str:
    """+8613812345678 → 138****5678: for logs and staff who must see that a number exists."""
    digits = phone[-11:] if len(phone) >= 11 else phone
    if len(digits) < 8:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


async def give(db: Database, channel: str, external_id: str, now: datetime) -> None:
    """Record the caller's consent (again: an upsert that keeps the first moment)."""
    values = {"channel": channel, "external_id": external_id, "consented_at": now}
    statement: Any  # each dialect's insert has its own on_conflict_do_nothing
    if db.dialect == "postgresql":
        statement = pg_insert(SmsConsent).values(**values).on_conflict_do_nothing()
    else:
        statement = sqlite_insert(SmsConsent).values(**values).on_conflict_do_nothing()
    async with db.session() as session, session.begin():
        await session.execute(statement)


async def consenting(session: AsyncSession, reporter_ids: list[int]) -> set[int]:
    """Which of these reporters (rows of the hotline channel) get their updates by SMS."""
    if not reporter_ids:
        return set()
    rows = await session.execute(
        select(Reporter.id).join(SmsConsent, (SmsConsent.channel == Reporter.channel)
                                 & (SmsConsent.external_id == Reporter.external_id))
        .where(Reporter.id.in_(reporter_ids), Reporter.phone.is_not(None)))
    return set(rows.scalars())


async def phone_for(db: Database, external_id: str) -> str | None:
    """The mobile number an SMS to this hotline reporter goes to (E.164), or None when they
    gave none or their consent is gone."""
    async with db.session() as session:
        phone = (await session.execute(
            select(Reporter.phone).join(SmsConsent, (SmsConsent.channel == Reporter.channel)
                                        & (SmsConsent.external_id == Reporter.external_id))
            .where(Reporter.channel == HOTLINE, Reporter.external_id == external_id))).scalar()
    return mobile_number(phone) if phone else None
