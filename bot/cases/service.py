"""`CaseService`: the one object the rest of the code holds for cases. It wires the parts —
filing, the lifecycle, notices and views — and hands each call to the part that does it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.context import CaseContext
from bot.cases.drafts import Clock, utcnow
from bot.cases.filing import CaseFiling
from bot.cases.lifecycle import CaseLifecycle
from bot.cases.notices import CaseNotices
from bot.cases.rows import add_event
from bot.cases.views import CaseViews
from bot.catalogue import Catalogue
from bot.config import CasesConfig
from bot.grids import GridMap
from bot.models import Case, CaseEvent
from bot.numbering import CaseNumbers
from bot.storage import Database
from bot.teams import Teams
from bot.workflow import Status
from bot.worktime import WorkCalendar


class CaseService:
    def __init__(
        self,
        db: Database,
        catalogue: Catalogue,
        grids: GridMap,
        calendar: WorkCalendar,
        config: CasesConfig,
        teams: Teams,
        clock: Clock = utcnow,
        redis: aioredis.Redis | None = None,
    ) -> None:
        tz = ZoneInfo(config.timezone)
        # Numbers come from Redis on PostgreSQL (the store the teams already share).
        numbers = CaseNumbers(db.dialect, redis if redis is not None else teams.redis,
                              config.number_prefix, tz)
        self.ctx = CaseContext(db=db, catalogue=catalogue, grids=grids, calendar=calendar,
                               config=config, teams=teams, numbers=numbers, clock=clock, tz=tz)
        self.views = CaseViews(self.ctx)
        self.notices = CaseNotices(self.ctx, self.views)
        self.filing = CaseFiling(self.ctx, self.views, self.notices)
        self.lifecycle = CaseLifecycle(self.ctx, self.views, self.notices, self.filing)
        # Filing
        self.file = self.filing.file
        self.filed_by = self.filing.filed_by
        self.dispatch_target = self.filing.dispatch_target
        # The workflow
        self.transition = self.lifecycle.transition
        self.locked = self.lifecycle.locked
        self.rate = self.lifecycle.rate
        self.record_callback = self.lifecycle.record_callback
        self.merge = self.lifecycle.merge
        self.split = self.lifecycle.split
        self.escalate = self.lifecycle.escalate
        self.fire_timer = self.lifecycle.fire_timer
        # Notices
        self.card_text = self.notices.card_text
        # Reading and presenting
        self.get = self.views.get
        self.list = self.views.list
        self.for_reporter = self.views.for_reporter
        self.public_view = self.views.public_view
        self.public_timeline = self.views.public_timeline
        self.local = self.views.local
        self.item_label = self.views.item_label
        self.assignee_label = self.views.assignee_label

    # The shared parts, read by the channels, the console and the timers.
    @property
    def db(self) -> Database:
        return self.ctx.db

    @property
    def catalogue(self) -> Catalogue:
        return self.ctx.catalogue

    @property
    def grids(self) -> GridMap:
        return self.ctx.grids

    @property
    def calendar(self) -> WorkCalendar:
        return self.ctx.calendar

    @property
    def config(self) -> CasesConfig:
        return self.ctx.config

    @property
    def teams(self) -> Teams:
        return self.ctx.teams

    @property
    def numbers(self) -> CaseNumbers:
        return self.ctx.numbers

    @property
    def tz(self) -> ZoneInfo:
        return self.ctx.tz

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self.ctx.clock = clock

    # Steps other services run inside their own locked transaction.
    def event(self, session: AsyncSession, case: Case, actor: str, action: str,
              old: str | None, new: str | None, now: datetime, note: str = "") -> CaseEvent:
        return add_event(session, case, actor, action, old, new, now, note)

    async def move(self, session: AsyncSession, case: Case, new: Status, actor: str,
                   note: str, now: datetime, tell_reporter: bool = True) -> CaseEvent:
        return await self.lifecycle.move(session, case, new, actor, note, now, tell_reporter)

    async def notify_to(self, session: AsyncSession, case: Case, now: datetime,
                        assignee: str, text: str) -> None:
        await self.notices.to_assignee(session, case, now, assignee, text)

