"""Case change notices: after every commit that touched a case, "case N changed" goes out on
a Redis pub/sub channel, so every server process (and every console tab) hears it.

Installed as SQLAlchemy session events on the Database's session factory, so every writer —
filing, worker actions, timers, the console — is covered without each one remembering to
publish. `after_flush` collects the ids of Case rows added or changed and of cases that got
a CaseEvent; `after_commit` hands them to a task on the running loop, which reads each case's
current (status, grid, department, level) and publishes. Best effort: a failed publish is
logged and never touches the case, which is already committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from bot.kv import PREFIX
from bot.models import Case, CaseEvent
from bot.storage import Database

CHANNEL = f"{PREFIX}case-changes"
_PENDING = "gridbot_changed_cases"
log = logging.getLogger(__name__)


def channel_for(redis: aioredis.Redis) -> str:
    """Pub/sub channels are server-wide, not per database: the database number goes into the
    name, so deployments (or test runs) sharing a Redis server on different dbs never hear
    each other's cases."""
    db = redis.connection_pool.connection_kwargs.get("db", 0)
    return f"{CHANNEL}:{db}"


def _collect(session: Session, _flush_context: Any) -> None:
    changed: set[int] = session.info.setdefault(_PENDING, set())
    for obj in (*session.new, *session.dirty):
        if isinstance(obj, Case) and obj.id is not None:
            if obj in session.new or session.is_modified(obj, include_collections=False):
                changed.add(obj.id)
        elif isinstance(obj, CaseEvent) and obj.case_id is not None:
            changed.add(obj.case_id)


def mark_changed(session: Session | Any, case_id: int) -> None:
    """For writers that bypass the ORM flush (the one-statement filing): publish this case
    after the session commits. Takes an AsyncSession or its sync Session."""
    info = session.info
    info.setdefault(_PENDING, set()).add(case_id)


def _notice(case_id: int, number: str, status: str, grid: str, department: str,
            level: str) -> str:
    return json.dumps({"id": case_id, "number": number, "status": status, "grid": grid,
                       "department": department, "level": level}, ensure_ascii=False)


def _forget(session: Session, *_: Any) -> None:
    session.info.pop(_PENDING, None)


class ChangePublisher:
    """Publishes the committed case changes of one Database on one Redis. Commits in a burst
    (a busy hour, the timers' sweep) are coalesced into one read and a few publishes."""

    COALESCE_S = 0.05
    CHUNK = 500

    def __init__(self, db: Database, redis: aioredis.Redis,
                 session_class: type[Session]) -> None:
        self.db = db
        self.redis = redis
        self._pending: set[int] = set()
        self._known: dict[int, str] = {}  # notices of cases whose writer gave the row itself
        self._flusher: asyncio.Task[None] | None = None  # held so it is not collected early
        self._session_class = session_class
        self._listeners: list[tuple[str, Any]] = [
            ("after_flush", _collect), ("after_commit", self._committed),
            ("after_rollback", _forget)]
        for name, listener in self._listeners:
            event.listen(session_class, name, listener)

    def _committed(self, session: Session) -> None:
        ids = session.info.pop(_PENDING, None)
        if ids:
            self.note(ids)

    def note(self, ids: set[int] | list[int]) -> None:
        """Publish these committed cases soon, as the database has them then."""
        self._pending.update(ids)
        for case_id in ids:  # a later change: the stored row is the news now
            self._known.pop(case_id, None)
        self._schedule()

    def announce(self, case: Case) -> None:
        """Publish this committed case as given, without reading it back (the one-statement
        filing holds the row it wrote: a read per batch saved on the busiest path)."""
        if case.id in self._pending:
            return  # already due to be read
        self._known[case.id] = _notice(case.id, case.number, str(case.status), case.grid_code,
                                       case.department, case.current_level)
        self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a synchronous commit (migrations, scripts): nobody is listening
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(self.COALESCE_S)
        while self._pending or self._known:
            ids = sorted(self._pending)[: self.CHUNK]
            self._pending.difference_update(ids)
            known, self._known = list(self._known.values()), {}
            await self.publish(ids, known)

    async def publish(self, case_ids: list[int], known: list[str] | None = None) -> None:
        """Read `case_ids` and publish them, with the `known` notices, in one Redis round
        trip."""
        notices = list(known or [])
        try:
            if case_ids:
                # One read without BEGIN/ROLLBACK where an autocommit pool exists.
                query = select(Case.id, Case.number, Case.status, Case.grid_code,
                               Case.department, Case.current_level).where(
                                   Case.id.in_(case_ids))
                engine = self.db.autocommit_engine or self.db.engine
                async with engine.connect() as conn:
                    notices += [_notice(*row) for row in (await conn.execute(query)).all()]
            channel = channel_for(self.redis)
            async with self.redis.pipeline(transaction=False) as pipe:
                for notice in notices:
                    pipe.publish(channel, notice)
                await pipe.execute()
        except Exception:  # the case is committed; a lost notice only delays a screen
            log.warning("could not publish changes of cases %s (and %d more)", case_ids,
                        len(known or []), exc_info=True)

    async def drain(self) -> None:
        """Wait for the publishes in flight (tests, shutdown)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def close(self) -> None:
        """Publish what is in flight, then stop listening. SQLAlchemy's event registry holds
        its listeners strongly: left installed, they would keep this Database, its engine
        and its statement cache alive for the life of the process."""
        await self.drain()
        for name, listener in self._listeners:
            event.remove(self._session_class, name, listener)
        self._listeners = []  # a second close removes nothing


def install(db: Database, redis: aioredis.Redis) -> ChangePublisher:
    """Listen on this Database's sessions only (a per-Database Session subclass), so two
    Services in one process each publish their own commits once."""
    base = db.session.kw.get("sync_session_class") or Session
    tracked = type("ChangeTrackedSession", (base,), {})
    publisher = ChangePublisher(db, redis, tracked)
    db.session.configure(sync_session_class=tracked)
    db.change_publisher = publisher  # type: ignore[attr-defined]
    return publisher


async def subscribe(redis: aioredis.Redis,
                    idle_s: float = 15.0) -> AsyncIterator[dict[str, Any] | None]:
    """Every change notice from now on, from any process publishing on this Redis; None after
    each `idle_s` of quiet (a cue for keep-alives)."""
    channel = channel_for(redis)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    try:
        while True:
            message = await pubsub.get_message(timeout=idle_s)
            if message is None:
                yield None
                continue
            try:
                yield json.loads(message["data"])
            except (TypeError, ValueError):
                continue
    finally:
        await pubsub.unsubscribe(channel)
        await pubsub.aclose()
