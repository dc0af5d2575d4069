"""The rows a filing writes besides the case itself — the report → filed → dispatched trail,
the dispatched case's timers, the team's card, the photos and the report key — described
once (`FiledRows`). The PostgreSQL statement (bot/cases/filing_pg.py) and the ORM path
(`FiledRows.write`) are both made from this description; `move` writes the same trail and
timers through `timer_rows` and `outbox_row`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.media_store import media_kind
from bot.models import Case, CaseEvent, CaseMedia, CaseTimer, FiledReport, OutboxMessage
from bot.texts import t
from bot.workflow import Status
from bot.worktime import WorkCalendar
from nlp.normalize import clean, mask_personal

# Shares of the handling time at which the assignee is reminded, and each reminder's timer
# kind (the second one says the deadline is close).
REMIND_AT = (0.5, 0.8)
REMIND_KINDS = ("remind", "remind_final")

# Built once: a statement object caches its compiled form, so the hot filing path skips
# SQLAlchemy's per-call statement construction and cache-key work.
_INSERT_EVENTS = insert(CaseEvent)
_INSERT_TIMERS = insert(CaseTimer)
_INSERT_OUTBOX = insert(OutboxMessage)
_INSERT_MEDIA = insert(CaseMedia)


def timer_rows(case: Case, now: datetime, calendar: WorkCalendar,
               working: bool) -> list[dict[str, Any]]:
    """A dispatched case's timers: the response limit (接单 in time, else 督办), reminders at
    REMIND_AT of the handling time and the escalation at the deadline. `working`: the
    item's limits count working time, so the reminders fall inside office hours."""
    if case.status != Status.DISPATCHED or case.handling_due is None:
        return []

    def row(kind: str, due: datetime) -> dict[str, Any]:
        return {"case_id": case.id, "kind": kind, "level": case.current_level,
                "due_at": due, "created_at": now, "outcome": ""}

    rows = []
    if case.response_due is not None and now < case.response_due < case.handling_due:
        rows.append(row("respond", case.response_due))
    reminders = calendar.shares_of(now, case.handling_due, REMIND_AT, working)
    rows += [row(kind, due) for kind, due in zip(REMIND_KINDS, reminders, strict=True)]
    rows.append(row("escalate", case.handling_due))
    return rows


MAX_CARD_PHOTOS = 10  # Telegram's media group holds 10


def outbox_payload(case: Case, kind: str) -> dict[str, Any]:
    payload: dict[str, Any] = {"case": case.number, "status": str(case.status),
                               "level": case.current_level, "kind": kind}
    if kind == "card" and case.lat is not None and case.lon is not None:
        # The place travels with the card: a venue on Telegram, a map link on WeCom.
        payload["point"] = [case.lat, case.lon]
        payload["address"] = case.address
    return payload


def card_payload(case: Case, media: list[str]) -> dict[str, Any]:
    """The first card also carries the reporter's photos (case_media refs), for channels
    that can show them beside the card."""
    payload = outbox_payload(case, "card")
    if media:
        payload["photos"] = list(media[:MAX_CARD_PHOTOS])
    return payload


def outbox_key(case: Case, kind: str, channel: str, unique: str | None = None) -> str:
    """Made once, with the row: it travels with every retry of the send."""
    return f"{case.number}:{kind}:{channel}:{unique or uuid.uuid4().hex}"


def outbox_row(case: Case, channel: str, recipient: str, text: str, now: datetime,
               kind: str) -> dict[str, Any]:
    """kind: card (the team's view of the case, to edit in place where the channel can),
    notice (督办 and other messages to a team) or citizen (to a reporter)."""
    return {
        "idempotency_key": outbox_key(case, kind, channel),
        "case_id": case.id, "channel": channel, "recipient": recipient, "text": text,
        "payload": outbox_payload(case, kind),
        "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
    }


@dataclass
class FiledRows:
    """What filing one case writes besides the case and its reporter."""

    events: list[dict[str, Any]]  # actor, action, from_status, to_status, note
    timers: list[dict[str, Any]]  # kind, level, due_at (and case_id, created_at, outcome)
    card_text: str  # the team's card, sent to the grid's room when it has one
    card_payload: dict[str, Any]
    media: list[str] = field(default_factory=list)  # photo references
    report_key: str = ""  # the client's report key ('' = none): filed once

    @classmethod
    def of(cls, case: Case, now: datetime, timers: list[dict[str, Any]], card_text: str,
           dispatched_to: str, media: list[str], report_key: str) -> FiledRows:
        return cls(events=filed_events(dispatched_to), timers=timers,
                   card_text=card_text, card_payload=card_payload(case, media),
                   media=list(media), report_key=report_key)

    async def write(self, session: AsyncSession, case: Case, room: tuple[str, str] | None,
                    now: datetime) -> None:
        """The ORM path: one insert per table, in the caller's transaction (case.id set).
        The reporter hears about filing in the reply to their confirmation, not twice; the
        grid team's first card is the dispatch (a case being filed is not theirs yet)."""
        await session.execute(_INSERT_EVENTS, [
            {**event, "case_id": case.id, "at": now} for event in self.events])
        if self.timers:
            await session.execute(_INSERT_TIMERS, [
                {**row, "case_id": case.id} for row in self.timers])
        if room is not None:
            channel, chat = room
            await session.execute(_INSERT_OUTBOX, [{
                "idempotency_key": outbox_key(case, "card", channel), "case_id": case.id,
                "channel": channel, "recipient": chat, "text": self.card_text,
                "payload": self.card_payload, "status": "pending", "attempts": 0,
                "next_attempt_at": now, "created_at": now}])
        if self.media:
            await session.execute(_INSERT_MEDIA, [
                {"case_id": case.id, "kind": media_kind(ref), "ref": ref, "added_by": "citizen",
                 "created_at": now} for ref in self.media])
        if self.report_key:
            session.add(FiledReport(key=self.report_key, case_id=case.id, created_at=now))


def filed_events(dispatched_to: str) -> list[dict[str, Any]]:
    """The trail of report → filed → dispatched, as `move` writes it."""
    return [
        {"actor": "citizen", "action": "report", "from_status": None,
         "to_status": str(Status.REPORTED), "note": ""},
        {"actor": "system", "action": "transition", "from_status": str(Status.REPORTED),
         "to_status": str(Status.FILED), "note": t("event.auto_filed")},
        {"actor": "system", "action": "transition", "from_status": str(Status.FILED),
         "to_status": str(Status.DISPATCHED),
         "note": t("event.dispatched", target=dispatched_to)},
    ]


def add_event(session: AsyncSession, case: Case, actor: str, action: str, old: str | None,
              new: str | None, now: datetime, note: str = "") -> CaseEvent:
    """One entry of the case's trail. Notes are free text from workers and staff: cleaned
    and masked like a report."""
    event = CaseEvent(case_id=case.id, at=now, actor=actor, action=action,
                      from_status=old, to_status=new, note=mask_personal(clean(note)))
    session.add(event)
    return event
