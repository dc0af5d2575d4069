"""The only writer of outbox rows: the team's card, notices to whoever holds a case, and
updates to the people who reported it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.context import CaseContext
from bot.cases.rows import outbox_row
from bot.cases.views import CaseViews
from bot.models import AttachedReport, Case, CaseMedia, OutboxMessage
from bot.scope import Scope
from bot.sms_consent import HOTLINE, SMS_CHANNEL, consenting
from bot.texts import t
from bot.workflow import Status
from nlp.normalize import mask_personal

_REPORTER = "reporter:"


@dataclass(frozen=True)
class Recipient:
    """Where an outbox row goes: a chat on a channel, the console (a scope's inbox), or a
    reporter — stored as reporter:ROW_ID and turned into their channel id only when sent, so
    the outbox table holds no one's identity."""

    channel: str
    address: str

    @classmethod
    def reporter(cls, channel: str, reporter_id: int) -> Recipient:
        return cls(channel, f"{_REPORTER}{reporter_id}")


def public_note(note: str) -> str:
    """A worker's or staff member's note as a reporter reads it: masked (plates too) and
    short."""
    return mask_personal(note, plates=True)[:200]


def _added_photos(session: AsyncSession, case: Case) -> list[str]:
    """The photos a worker or staff member added to the case in this transaction (the
    result photos of a 办结): rows not yet written, so read from the session."""
    return [m.ref for m in session.new
            if isinstance(m, CaseMedia) and m.case_id == case.id and m.added_by != "citizen"]


def reporter_id_of(address: str) -> int | None:
    """The reporter row id of a reporter:ID address, else None."""
    return int(address[len(_REPORTER):]) if address.startswith(_REPORTER) else None


class CaseNotices:
    def __init__(self, ctx: CaseContext, views: CaseViews) -> None:
        self.ctx = ctx
        self.views = views

    def card_text(self, case: Case) -> str:
        """What a grid team sees of a case: never who reported it."""
        grid = self.ctx.grids.get(case.grid_code)
        return t("group.case_card", number=case.number, item=self.views.item_label(case),
                 address=case.address or t("case.no_address"),
                 grid=grid.name if grid else case.grid_code, text=case.text,
                 deadline=self.views.local(case.handling_due),
                 status=t(f"status.{case.status}"),
                 target=self.views.assignee_label(case.assignee))

    def add(self, session: AsyncSession, case: Case, to: Recipient, text: str,
            now: datetime, kind: str, fresh: bool = False,
            say: dict[str, Any] | None = None, photos: list[str] | None = None) -> None:
        """One outbox row in the caller's transaction (sent or lost with it). `fresh`: a
        card posted anew instead of editing the one on screen. `say`: the catalogue key and
        values of `text`, so a channel can render it in the reader's own language."""
        row = outbox_row(case, to.channel, to.address, text, now, kind)
        if fresh:
            row["payload"]["fresh"] = True
        if say is not None:
            row["payload"]["say"] = say
        if photos:
            row["payload"]["photos"] = list(photos)
        session.add(OutboxMessage(**row))

    async def on_transition(self, session: AsyncSession, case: Case, now: datetime,
                            tell_reporter: bool, why: str = "", note: str = "") -> None:
        """The grid team's card shows the new state; the reporters hear of it. `why`: the
        case came back (a failed check, a reopen): a new card says why, where the team
        will see it, instead of a silent edit of an old one. `note`: the transition's note
        (the handler's result at 办结), which the reporters read too."""
        # The team's first card is the dispatch: a case being filed is not theirs yet.
        group = None if case.status == Status.FILED else await self.ctx.teams.group_of(
            session, case.grid_code)
        if group is not None:
            text = self.card_text(case)
            if why:
                text = t("group.card_back", why=why) + "\n" + text
            self.add(session, case, Recipient(*group), text, now, kind="card", fresh=bool(why))
        if tell_reporter:
            # 办结 with a result photo: the reporters may see it beside the words.
            photos = _added_photos(session, case) if case.status == Status.HANDLED else []
            await self.to_reporters(session, case, *self._update_for(case, why, note), now,
                                    photos=photos)

    def _update_for(self, case: Case, why: str, note: str) -> tuple[str, dict[str, Any]]:
        """What the reporters read of a transition: what happened and what comes next."""
        values: dict[str, Any] = {"number": case.number}
        if case.status == Status.CLOSED:
            return "citizen.closed_rate", values
        if case.status == Status.HANDLED and note and note != t("event.resolved"):
            return "citizen.handled_with", {**values, "note": public_note(note)}
        if case.status == Status.DISPATCHED and why:
            return "citizen.back_with", {**values, "why": public_note(why)}
        return "citizen.status_changed", values

    async def to_reporters(self, session: AsyncSession, case: Case, key: str,
                           values: dict[str, Any], now: datetime,
                           photos: list[str] | None = None) -> None:
        """Every reporter following the case reads `key` filled with `values` (and the
        case's status); `photos`: case_media refs a channel may show beside the words."""
        text = t(key, **values, status=t(f"status.{case.status}"))
        for recipient in await self.reporters_of(session, case):
            self.add(session, case, recipient, text, now, kind="citizen",
                     say={"key": key, "values": values}, photos=photos)

    async def reporters_of(self, session: AsyncSession, case: Case) -> list[Recipient]:
        """The first reporter and everyone whose report was attached: all follow the case."""
        attached = await session.execute(
            select(AttachedReport.channel, AttachedReport.reporter_id)
            .where(AttachedReport.case_id == case.id).order_by(AttachedReport.id))
        # (The column allows a case without a reporter row: then only the attached ones.)
        first = [(case.channel, case.reporter_id)] if case.reporter_id is not None else []
        following = [*first, *attached.all()]
        # A hotline caller who agreed to updates by SMS hears of the case there.
        by_sms = await consenting(session, [r for c, r in following if c == HOTLINE])
        return [Recipient.reporter(SMS_CHANNEL if r in by_sms else c, r) for c, r in following]

    async def to_assignee(self, session: AsyncSession, case: Case, now: datetime,
                          assignee: str, text: str) -> None:
        """Told in the chat bound to the grid, street or department; in the console when
        it has none."""
        room = await self.ctx.teams.room_of(session, Scope.parse(assignee))
        to = Recipient(*room) if room is not None else Recipient("console", assignee)
        self.add(session, case, to, text, now, kind="notice")
