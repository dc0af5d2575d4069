"""The district's weekly digest (未诉先办): each Monday at the alerts hour, the week's hot
spots among the district's cases go to the chat bound to `district:CODE`. Written once per
district and week across server processes: the outbox row's idempotency key is the claim."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.cases import CaseService
from bot.config import AlertsConfig
from bot.hotspots import live_hotspots
from bot.models import Case, OutboxMessage
from bot.periodic import repeat
from bot.scope import Scope
from bot.texts import t

log = logging.getLogger(__name__)
CHECK_EVERY_S = 600.0
TOP = 5


class WeeklyDigest:
    def __init__(self, cases: CaseService, config: AlertsConfig, gazetteer: Any = None) -> None:
        self.cases = cases
        self.config = config
        self.gazetteer = gazetteer

    def week_start(self, now: datetime) -> datetime | None:
        """This week's digest moment (Monday at the alerts hour) once it has come."""
        local = now.astimezone(ZoneInfo(self.cases.config.timezone))
        monday = local.date() - timedelta(days=local.weekday())
        moment = datetime.combine(monday, time(self.config.hour), local.tzinfo)
        return moment if moment <= local else None

    async def send_due(self) -> int:
        now = self.cases.clock()
        moment = self.week_start(now)
        if moment is None:
            return 0
        sent = 0
        grids = self.cases.grids
        for district in (a for a in grids.areas.values() if a.level == "district"):
            key = f"digest:{district.code}:{moment.date().isoformat()}"
            async with self.cases.db.session() as session:
                room = await self.cases.teams.room_of(session, Scope("district", district.code))
                written = (await session.execute(select(OutboxMessage.id).where(
                    OutboxMessage.idempotency_key == key))).first()
            if room is None or written is not None:
                continue
            codes = [g.code for g in grids.grids
                     if district.code in {a.code for a in grids.ancestors(g.code)}]
            spots = await live_hotspots(self.cases.db, grids, moment - timedelta(days=7),
                                        moment, Case.grid_code.in_(codes), top=TOP,
                                        gazetteer=self.gazetteer)
            lines = [t("digest.line", rank=s["rank"], description=s["description"],
                       count=len(s["members"]), grid=s["grid"]["name"]) for s in spots]
            text = t("digest.week", district=district.name, lines="\n".join(lines)) \
                if lines else t("digest.quiet", district=district.name)
            try:
                async with self.cases.db.session() as session, session.begin():
                    session.add(OutboxMessage(
                        idempotency_key=key, case_id=None, channel=room[0], recipient=room[1],
                        text=text, payload={"kind": "notice", "digest": district.code},
                        status="pending", attempts=0, next_attempt_at=now, created_at=now))
            except IntegrityError:
                continue  # another process wrote this week's digest
            sent += 1
        return sent

    async def run_forever(self, stop: asyncio.Event) -> None:
        await repeat(self.send_due, stop, CHECK_EVERY_S, log)
