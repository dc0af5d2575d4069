"""Deliver outbox rows: claimed under a lease, sent outside the transaction, retried with
backoff. A process killed mid-send leaves its rows leased; once the lease runs out another
runner takes them again, so every notification is delivered at least once, and the
idempotency key travels with it so receivers that can deduplicate see it exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from bot.cases import Clock, utcnow
from bot.cases.notices import Recipient, reporter_id_of
from bot.models import OutboxMessage, Reporter
from bot.periodic import repeat
from bot.storage import Database

log = logging.getLogger(__name__)
BATCH_REST_S = 0.05
RECORD_EVERY_S = 0.25


class DeliveryError(Exception):
    """A channel failed in a way worth retrying (timeout, 5xx, rate limit)."""


class PermanentDeliveryError(Exception):
    """Retrying will not help (the user blocked the bot, the chat is gone)."""


@dataclass(frozen=True)
class Notice:
    id: int
    idempotency_key: str
    channel: str
    recipient: str  # resolved: the channel's own id for the person or chat
    text: str
    payload: dict[str, Any]


Sender = Callable[[Notice], Awaitable[None]]


class OutboxWorker:
    def __init__(self, db: Database, senders: dict[str, Sender], clock: Clock = utcnow,
                 lease_s: float = 60, max_attempts: int = 12, backoff_s: float = 2,
                 backoff_max_s: float = 900) -> None:
        self.db = db
        self.senders = senders
        self.clock = clock
        self.lease = timedelta(seconds=lease_s)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s

    def register(self, channel: str, sender: Sender) -> None:
        """A started channel delivers its rows from now on (until `unregister`)."""
        self.senders[channel] = sender

    def unregister(self, channel: str) -> None:
        self.senders.pop(channel, None)

    async def claim(self, limit: int = 50) -> list[Notice]:
        """Take due rows of channels we can send on in one statement (then one read of the
        reporters' ids): PostgreSQL lets several runners share the work (SKIP LOCKED),
        SQLite serialises writers anyway."""
        if not self.senders:
            return []
        now = self.clock()
        due = (
            select(OutboxMessage.id)
            .where(OutboxMessage.status.in_(("pending", "sending")),
                   OutboxMessage.next_attempt_at <= now,
                   OutboxMessage.channel.in_(list(self.senders)))
            .order_by(OutboxMessage.id).limit(limit)
        )
        if self.db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        taking = (
            update(OutboxMessage).where(OutboxMessage.id.in_(due.scalar_subquery()))
            .values(status="sending", attempts=OutboxMessage.attempts + 1,
                    next_attempt_at=now + self.lease)
            .returning(OutboxMessage.id, OutboxMessage.idempotency_key, OutboxMessage.channel,
                       OutboxMessage.recipient, OutboxMessage.text, OutboxMessage.payload)
            .execution_options(synchronize_session=False)
        )
        async with self.db.serialised(), self.db.single() as session, session.begin():
            rows = sorted((await session.execute(taking)).all())
            reporters = await self._reporter_ids(session, [row.recipient for row in rows])
        notices = []
        for row in rows:
            recipient = row.recipient
            if (reporter_id := reporter_id_of(recipient)) is not None:
                recipient = reporters.get(reporter_id, "")
            notices.append(Notice(row.id, row.idempotency_key, row.channel, recipient,
                                  row.text, dict(row.payload or {})))
        return notices

    async def _reporter_ids(self, session: Any, recipients: list[str]) -> dict[int, str]:
        ids = {i for r in recipients if (i := reporter_id_of(r)) is not None}
        if not ids:
            return {}
        result = await session.execute(
            select(Reporter.id, Reporter.external_id).where(Reporter.id.in_(ids)))
        return dict(result.all())

    async def deliver(self, notice: Notice) -> bool:
        """Send one claimed notice and record the outcome."""
        outcome = await self._send(notice)
        await self._record([outcome])
        return outcome[1] == "delivered"

    async def _send(self, notice: Notice) -> tuple[int, str, str]:
        """(row id, delivered / failed / retry, error)."""
        try:
            await self.senders[notice.channel](notice)
        except PermanentDeliveryError as exc:
            return notice.id, "failed", str(exc)
        except Exception as exc:  # any channel failure: retry later, never block the case
            return notice.id, "retry", repr(exc)
        return notice.id, "delivered", ""

    async def _send_in_turn(self, notices: list[Notice]) -> list[tuple[int, str, str]]:
        return [await self._send(notice) for notice in notices]

    async def _record(self, outcomes: list[tuple[int, str, str]]) -> None:
        """The delivered rows of a pass in one statement; failures (rare) one by one."""
        delivered = [row_id for row_id, status, _ in outcomes if status == "delivered"]
        if delivered:
            async with self.db.single() as session, session.begin():
                await session.execute(
                    update(OutboxMessage).where(OutboxMessage.id.in_(delivered))
                    .values(status="delivered", last_error="", delivered_at=self.clock()))
        for row_id, status, error in outcomes:
            if status == "failed":
                await self._fail(row_id, error)
            elif status == "retry":
                await self._retry(row_id, error)

    async def _fail(self, row_id: int, error: str) -> None:
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == row_id)
                .values(status="failed", last_error=error[:1000]))

    async def _retry(self, row_id: int, error: str) -> None:
        async with self.db.session() as session, session.begin():
            row = await session.get(OutboxMessage, row_id)
            if row is None:
                return
            row.last_error = error[:1000]
            if row.attempts >= self.max_attempts:
                row.status = "failed"
                log.warning("outbox %s failed after %s attempts: %s", row_id, row.attempts, error)
                return
            delay = min(self.backoff_s * 2 ** (row.attempts - 1), self.backoff_max_s)
            row.status = "pending"
            row.next_attempt_at = self.clock() + timedelta(seconds=delay)

    async def run_once(self, limit: int = 50) -> int:
        notices = await self.claim(limit)
        if not notices:
            return 0
        # One person's (or chat's) notices go one after another, oldest first, so 「处置中」
        # never arrives after 「已处置」; different recipients are sent to at once.
        in_turn: dict[tuple[str, str], list[Notice]] = {}
        for notice in notices:
            in_turn.setdefault((notice.channel, notice.recipient), []).append(notice)
        pending = {asyncio.ensure_future(self._send_in_turn(q)) for q in in_turn.values()}
        delivered = 0
        while pending:
            # What is done within a moment is recorded together; a slow send (a channel
            # timing out) does not hold back the record of the others for long.
            done, pending = await asyncio.wait(pending, timeout=RECORD_EVERY_S)
            outcomes = [outcome for task in done for outcome in task.result()]
            try:
                await self._record(outcomes)
            except Exception:  # the database is away: the lease brings these rows back
                log.warning("outbox: %d outcomes not recorded", len(outcomes), exc_info=True)
                continue
            delivered += sum(status == "delivered" for _, status, _ in outcomes)
        return delivered

    async def run_forever(self, stop: asyncio.Event, interval_s: float = 1.0) -> None:
        # After a busy pass, a short rest lets the next pass take a batch instead of a row:
        # a transaction or two per batch rather than per notification.
        await repeat(self.run_once, stop, interval_s, log, busy_rest_s=BATCH_REST_S)

    async def undelivered(self) -> int:
        async with self.db.session() as session:
            return (await session.execute(select(func.count()).where(
                OutboxMessage.status.in_(("pending", "sending"))))).scalar_one()


async def updates_for(db: Database, channel: str, external_id: str, after: int = 0,
                      limit: int = 50) -> list[dict[str, Any]]:
    """Notifications for one person on a polling channel, oldest first, after an id."""
    async with db.session() as session:
        reporter_id = (await session.execute(select(Reporter.id).where(
            Reporter.channel == channel, Reporter.external_id == external_id))).scalar()
        if reporter_id is None:
            return []
        rows = await session.execute(
            select(OutboxMessage).where(OutboxMessage.channel == channel,
                                        OutboxMessage.recipient ==
                                        Recipient.reporter(channel, reporter_id).address,
                                        OutboxMessage.id > after)
            .order_by(OutboxMessage.id).limit(limit))
        return [{"id": r.id, "text": r.text, "case": r.payload.get("case"),
                 "at": r.created_at.isoformat()} for r in rows.scalars()]
