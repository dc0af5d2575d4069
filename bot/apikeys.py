"""API keys for the HTTP API (`X-API-Key`) and Open311 (`api_key`), kept in the database.

A key is made here, shown once (`gridbot apikeys add NAME` prints it) and never stored: the
table holds its SHA-256 and a short prefix that names it in listings and narrows the lookup.
Revoking keeps the row (Open311 tokens point at it) and stops it at once.

Each key has scopes, chosen when it is made: `open311` (filing through Open311), `chat` (the
chat and report API, /api/v1), `suggest` (hotline suggestions; /api/v1/suggest/confirm
stores training examples) and `admin` (all of them). A new key gets open311 alone unless
told otherwise: an integrator's key does not reach the chat API or the training data.
Keys from config (`api.keys`) are not here and keep full access.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
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


OPEN311, CHAT, SUGGEST, ADMIN = "open311", "chat", "suggest", "admin"
SCOPES = (OPEN311, CHAT, SUGGEST, ADMIN)
DEFAULT_SCOPES = (OPEN311,)


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
    scopes: tuple[str, ...] = DEFAULT_SCOPES

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes


def parse_scopes(stored: str | None) -> tuple[str, ...]:
    """The stored comma-separated scopes, known ones only, in SCOPES order."""
    given = {part.strip() for part in (stored or "").split(",")}
    return tuple(s for s in SCOPES if s in given)


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Scopes as given on the command line: known ones, at least one, in SCOPES order."""
    given = {s.strip().lower() for s in scopes}
    unknown = sorted(given - set(SCOPES))
    if unknown:
        raise ApiKeyError(f"unknown scope {', '.join(unknown)}: choose from "
                          f"{', '.join(SCOPES)}")
    if not given:
        raise ApiKeyError("give a key at least one scope")
    return tuple(s for s in SCOPES if s in given)


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.name, row.prefix, row.active, row.created_at, row.last_used_at,
                   parse_scopes(row.scopes))


def hash_key(key: str) -> str:
    """SHA-256 hex: the keys are 256-bit random strings, so a slow hash would add nothing."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise ApiKeyError(f"the key name must be 1 to {NAME_MAX} printable characters")
    return name


async def create_key(db: Database, name: str, now: datetime | None = None,
                     scopes: Iterable[str] = DEFAULT_SCOPES) -> tuple[KeyInfo, str]:
    """(the stored key's info, the key): the only moment the key exists in the clear."""
    name = _check_name(name)
    chosen = check_scopes(scopes)
    key = KEY_MARK + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[:PREFIX_LEN], key_hash=hash_key(key), active=True,
                 created_at=now or datetime.now(UTC), scopes=",".join(chosen))
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
        # An UPDATE without RETURNING always gives a CursorResult (it has rowcount);
        # Session.execute is typed for any statement, so it only says Result.
        result = cast(CursorResult[Any], await session.execute(
            update(ApiKey).where(ApiKey.name == name.strip()).values(active=False)))
        return bool(result.rowcount)


async def set_scopes(db: Database, name: str, scopes: Iterable[str]) -> KeyInfo | None:
    """Change a key's scopes (None when no key has that name)."""
    chosen = check_scopes(scopes)
    async with db.session() as session, session.begin():
        row = (await session.execute(
            select(ApiKey).where(ApiKey.name == name.strip()))).scalar()
        if row is None:
            return None
        row.scopes = ",".join(chosen)
        return _info(row)


async def find_key(db: Database, given: str) -> KeyInfo | None:
    """The active key `given` is, whatever its scopes (nothing is touched): tells a key
    used outside its scopes (403) from a wrong one (401)."""
    found = await _find(db, given)
    return _info(found) if found is not None else None


async def _find(db: Database, given: str) -> ApiKey | None:
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
    return found


async def verify_key(db: Database, given: str, now: datetime | None = None,
                     scope: str = OPEN311) -> KeyInfo | None:
    """The active key `given` is, when it may be used for `scope`; else None. The prefix
    finds the candidates; the hashes are compared in constant time, so timing tells nothing
    about how much of a hash matched. The default scope is open311: the Open311 filing
    route asks without naming one; the HTTP API asks for chat or suggest."""
    found = await _find(db, given)
    if found is None or not _info(found).allows(scope):
        return None
    now = now or datetime.now(UTC)
    if found.last_used_at is None or now - found.last_used_at >= TOUCH_EVERY:
        async with db.session() as session, session.begin():
            await session.execute(update(ApiKey).where(ApiKey.id == found.id)
                                  .values(last_used_at=now))
        found.last_used_at = now
    return _info(found)
