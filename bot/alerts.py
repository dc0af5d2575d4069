"""Area alerts: a person follows an area (「关注 东华里」) and gets a short daily note of the
cases filed and closed near it; 「取消关注」 stops it. The note goes out once a day at the
configured hour, through the outbox like any update; several server processes claim each
follow's note with one conditional UPDATE, so it is sent once."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases import CaseService, ReporterRef, distance_m
from bot.cases.drafts import near_terms
from bot.cases.notices import Recipient
from bot.cases.views import reporter_row
from bot.config import AlertsConfig
from bot.locator import Locator
from bot.models import AreaFollow, Case, OutboxMessage
from bot.periodic import repeat
from bot.texts import t
from bot.workflow import Status

log = logging.getLogger(__name__)
CHECK_EVERY_S = 300.0  # how often the runner looks whether today's notes are due


class TooManyFollows(Exception):
    pass


class AreaAlerts:
    def __init__(self, cases: CaseService, locator: Locator, config: AlertsConfig) -> None:
        self.cases = cases
        self.locator = locator
        self.config = config

    async def follow(self, who: ReporterRef, words: str) -> AreaFollow | None:
        """Follow the place the words name; None when no known place matches them."""
        located = self.locator.from_text(words)
        spot = located.spot or (located.choices[0] if located.choices else None)
        if spot is None:
            return None
        now = self.cases.clock()
        async with self.cases.db.session() as session, session.begin():
            reporter_id = await self.cases.filing.reporter_id_for(session, who, now)
            count = (await session.execute(select(func.count()).where(
                AreaFollow.reporter_id == reporter_id))).scalar_one()
            if count >= self.config.max_per_person:
                raise TooManyFollows(count)
            follow = AreaFollow(
                reporter_id=reporter_id, channel=who.channel,
                place=(located.named or spot.address or spot.grid.name)[:100],
                lat=spot.lat, lon=spot.lon, radius_m=self.config.radius_m, created_at=now,
                noted_until=now)
            session.add(follow)
        return follow

    async def unfollow(self, who: ReporterRef) -> int:
        """Stop every follow of the person; how many there were."""
        async with self.cases.db.session() as session, session.begin():
            mine = select(AreaFollow.id).where(AreaFollow.reporter_id.in_(reporter_row(who)))
            ids = list((await session.execute(mine)).scalars())
            if ids:
                await session.execute(delete(AreaFollow).where(AreaFollow.id.in_(ids)))
        return len(ids)

    def due_since(self, now: datetime) -> datetime:
        """The last note moment at or before now (today's hour, else yesterday's)."""
        tz = ZoneInfo(self.cases.config.timezone)
        local = now.astimezone(tz)
        moment = datetime.combine(local.date(), time(self.config.hour), tz)
        return moment if moment <= local else moment - timedelta(days=1)

    async def send_due(self) -> int:
        """Write today's notes that are due and not yet written; how many went out."""
        now = self.cases.clock()
        cutoff = self.due_since(now)
        async with self.cases.db.session() as session:
            due = list((await session.execute(select(AreaFollow).where(
                AreaFollow.noted_until < cutoff))).scalars())
        sent = 0
        for follow in due:
            async with self.cases.db.session() as session, session.begin():
                # Claim this follow's note: of several processes, one updates the row.
                claimed = (await session.execute(
                    update(AreaFollow).where(AreaFollow.id == follow.id,
                                             AreaFollow.noted_until == follow.noted_until)
                    .values(noted_until=now).returning(AreaFollow.id))).scalar()
                if claimed is None:
                    continue
                text = await self._note(session, follow, now)
                if text:
                    session.add(OutboxMessage(
                        idempotency_key=f"area:{follow.id}:{now.isoformat()}",
                        case_id=None, channel=follow.channel,
                        recipient=Recipient.reporter(follow.channel, follow.reporter_id).address,
                        text=text, payload={"kind": "citizen", "area": follow.place},
                        status="pending", attempts=0, next_attempt_at=now, created_at=now))
                    sent += 1
        return sent

    async def _note(self, session: AsyncSession, follow: AreaFollow, now: datetime) -> str:
        """The day's note: cases filed and closed near the place since the last one, in
        public words (the item and the status, never anyone's report). '' when nothing."""
        near = [*near_terms(follow.lat, follow.lon, follow.radius_m),
                Case.merged_into.is_(None), Case.status != Status.REJECTED]
        since = follow.noted_until
        rows = (await session.execute(select(Case.item_name, Case.lat, Case.lon,
                                              Case.created_at, Case.closed_at).where(
            *near, (Case.created_at > since) | (Case.closed_at > since)))).all()
        filed: list[str] = []
        closed: list[str] = []
        for item, lat, lon, created, closed_at in rows:
            if lat is None or lon is None or distance_m(follow.lat, follow.lon, lat,
                                                        lon) > follow.radius_m:
                continue
            if created > since:
                filed.append(item)
            if closed_at is not None and closed_at > since:
                closed.append(item)
        if not filed and not closed:
            return ""
        return t("alerts.daily", place=follow.place, filed=len(filed), closed=len(closed),
                 items=_summary(filed + closed))

    async def run_forever(self, stop: asyncio.Event) -> None:
        await repeat(self.send_due, stop, CHECK_EVERY_S, log)


def _summary(items: list[str], limit: int = 3) -> str:
    """The commonest items, most first: 「暴露垃圾×2、井盖缺失」."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return "、".join(f"{name}×{n}" if n > 1 else name for name, n in ranked)
