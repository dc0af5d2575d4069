"""Fire due reminders and escalations. Timers live in the database, so a restart loses none;
on PostgreSQL several runners share the work and `SKIP LOCKED` keeps any timer from firing
twice. SQLite has one writer at a time, and gridbot runs one server process on SQLite (the
single-runner rule: `server.workers > 1` needs PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases import CaseService, Clock
from bot.models import Case, CaseTimer
from bot.periodic import repeat

log = logging.getLogger(__name__)
# A timer kind some other part owns (bot/verify.py: "verify"), run in the runner's
# transaction with the case locked.
KindFire = Callable[[AsyncSession, Case, CaseTimer, datetime], Awaitable[None]]


class TimerRunner:
    def __init__(self, cases: CaseService, clock: Clock | None = None,
                 kinds: dict[str, KindFire] | None = None) -> None:
        self.cases = cases
        self.clock = clock or cases.clock
        self.kinds = dict(kinds or {})

    async def run_once(self, limit: int = 100) -> int:
        now = self.clock()
        db = self.cases.db
        async with db.serialised(), db.session() as session, session.begin():
            query = (select(CaseTimer)
                     .where(CaseTimer.done_at.is_(None), CaseTimer.due_at <= now)
                     .order_by(CaseTimer.due_at, CaseTimer.id).limit(limit))
            if db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            timers = list((await session.execute(query)).scalars())
            for timer in timers:
                case = (await session.execute(
                    select(Case).where(Case.id == timer.case_id).with_for_update()
                )).scalar_one()
                # Mark first: an escalation re-dispatches and cancels the case's pending timers.
                timer.done_at = now
                timer.outcome = "fired"
                fire = self.kinds.get(timer.kind, self.cases.fire_timer)
                await fire(session, case, timer, now)
        return len(timers)

    async def run_forever(self, stop: asyncio.Event, interval_s: float = 5.0) -> None:
        await repeat(self.run_once, stop, interval_s, log)
