"""API keys for the HTTP API (`X-API-Key`) and Open311 (`api_key`), kept in the database.

A key is made here, shown once (`gridbot apikeys add NAME` prints it) and never stored: the
table holds its SHA-256 and a short prefix that names it in listings and narrows the lookup.
Revoking keeps the row (Open311 tokens point at it) and stops it at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.models import ApiKey
from bot.storage import Database

KEY_MARK = "gbk_"  # tells a gridbot key apart in config files and leak scanners
PREFIX_LEN = 12  # KEY_MARK + 8 random characters: shown in listings, indexed for lookup
MAX_KEY_LEN = 200  # anything longer is not one of ours; refuse before hashing it
NAME_MAX = 64
# last_used_at is a hint for operators, not an audit log: writing it on every request would
# turn each authenticated read into a write.
TOUCH_EVERY = timedelta(minutes=1)


class ApiKeyError(ValueError):
    """Bad key-management input; the message says what is wrong."""


@dataclass(frozen=True)
class KeyInfo:
    """A key as it may be shown: never the key itself, never its hash."""

    id: int
    name: str
    prefix: str
    active: bool
    created_at: datetime
    last_used_at: datetime | None


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.name, row.prefix, row.active, row.created_at, row.last_used_at)


def hash_key(key: str) -> str:
    """SHA-256 hex: the keys are 256-bit random strings, so a slow hash would add nothing."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise ApiKeyError(f"the key name must be 1 to {NAME_MAX} printable characters")
    return name


async def create_key(db: Database, name: str, now: datetime | None = None) -> tuple[KeyInfo, str]:
    """(the stored key's info, the key): the only moment the key exists in the clear."""
    name = _check_name(name)
    key = KEY_MARK + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[:PREFIX_LEN], key_hash=hash_key(key), active=True,
                 created_at=now or datetime.now(UTC))
    try:
        async with db.session() as session, session.begin():
            session.add(row)
    except IntegrityError:
        raise ApiKeyError(f"a key named '{name}' exists already (revoked keys keep "
                          "their name)") from None
    return _info(row), key


async def list_keys(db: Database) -> list[KeyInfo]:
    async with db.session() as session:
        rows = await session.execute(select(ApiKey).order_by(ApiKey.id))
        return [_info(row) for row in rows.scalars()]


async def revoke_key(db: Database, name: str) -> bool:
    """False when no key has that name. Revoking twice is harmless."""
    async with db.session() as session, session.begin():
        result = await session.execute(
            update(ApiKey).where(ApiKey.name == name.strip()).values(active=False))
        return bool(result.rowcount)


async def verify_key(db: Database, given: str, now: datetime | None = None) -> KeyInfo | None:
    """The active key `given` is, or None. The prefix finds the candidates; the hashes are
    compared in constant time, so timing tells nothing about how much of a hash matched."""
    if (not given or len(given) > MAX_KEY_LEN or not given.startswith(KEY_MARK)
            or not given.isascii() or not given.isprintable()):
        return None  # not one of ours; and a NUL would make PostgreSQL refuse the query
    digest = hash_key(given)
    async with db.session() as session:
        rows = (await session.execute(select(ApiKey).where(
            ApiKey.prefix == given[:PREFIX_LEN], ApiKey.active.is_(True)))).scalars().all()
    found = None
    for row in rows:  # no early exit: every candidate costs the same
        if hmac.compare_digest(row.key_hash, digest):
            found = row
    if found is None:
        return None
    now = now or datetime.now(UTC)
    if found.last_used_at is None or now - found.last_used_at >= TOUCH_EVERY:
        async with db.session() as session, session.begin():
            await session.execute(update(ApiKey).where(ApiKey.id == found.id)
                                  .values(last_used_at=now))
        found.last_used_at = now
    return _info(found)
