"""bot/cases/notices.py: the only writer of outbox rows — who hears of a case (the team's
chat, the assignee's room or console, every reporter, a hotline caller by SMS) and what
they read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import sms_consent
from bot.cases import CaseDraft, ReporterRef
from bot.cases.notices import Recipient, public_note, reporter_id_of
from bot.models import Case, OutboxMessage
from bot.services import Services
from bot.texts import t
from bot.workflow import Status

GRID = "440604001030103"  # 同济社区第3网格; its chat: telegram:-1001000000023
HERE = (23.0215, 113.1214)
sqlite_only = pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)


def test_a_reporter_is_addressed_by_row_never_by_identity() -> None:
    to = Recipient.reporter("wechat", 42)
    assert to == Recipient("wechat", "reporter:42")
    assert reporter_id_of(to.address) == 42
    assert reporter_id_of("-1001000000023") is None and reporter_id_of("console") is None


def test_a_note_for_reporters_is_masked_plates_too_and_short() -> None:
    note = public_note("已联系车主13812345678，粤E12345 已拖走。" + "好" * 300)
    assert "13812345678" not in note and "粤E12345" not in note
    assert note.startswith("已联系车主138****5678，粤E***45") and len(note) == 200


@sqlite_only
def test_what_reporters_read_of_a_transition(services: Services) -> None:
    notices = services.cases.notices

    def update(status: Status, why: str = "", note: str = "") -> tuple[str, dict[str, str]]:
        return notices._update_for(Case(number="N1", status=status), why, note)

    assert update(Status.CLOSED) == ("citizen.closed_rate", {"number": "N1"})
    assert update(Status.HANDLED, note="已清理，联系车主13812345678") == (
        "citizen.handled_with", {"number": "N1", "note": "已清理，联系车主138****5678"})
    # The default 办结 note says nothing more than the status.
    assert update(Status.HANDLED, note=t("event.resolved"))[0] == "citizen.status_changed"
    assert update(Status.DISPATCHED, why="还有垃圾") == (
        "citizen.back_with", {"number": "N1", "why": "还有垃圾"})
    assert update(Status.HANDLING)[0] == "citizen.status_changed"


async def _rows(s: Services) -> list[OutboxMessage]:
    async with s.db.session() as session:
        return list((await session.execute(select(OutboxMessage).order_by(
            OutboxMessage.id))).scalars())


@sqlite_only
async def test_every_follower_hears_and_a_consenting_caller_by_sms(services: Services) -> None:
    s = services
    await sms_consent.give(s.db, "hotline", "call-1", datetime.now(UTC))
    number = (await s.cases.file(CaseDraft(text="报刊亭破损", item_code="C0121", grid_code=GRID,
                                           lat=HERE[0], lon=HERE[1]),
                                 ReporterRef("test", "first"))).case.number
    for who in (ReporterRef("hotline", "call-1", "13812345678"),
                ReporterRef("hotline", "call-2", "13912345678"), ReporterRef("wechat", "o-1")):
        await s.cases.file(CaseDraft(text="报刊亭坏了", item_code="C0121", grid_code=GRID,
                                     lat=HERE[0], lon=HERE[1]), who)
    before = len(await _rows(s))
    await s.cases.transition(number, Status.HANDLING, "test")
    new = (await _rows(s))[before:]
    card, *updates = new
    assert (card.channel, card.recipient, card.payload["kind"]) == (
        "telegram", "-1001000000023", "card")
    assert card.text == s.cases.card_text(await s.cases.get(number))  # type: ignore[arg-type]
    assert [u.channel for u in updates] == ["test", "sms", "hotline", "wechat"]
    assert all(u.recipient.startswith("reporter:") and u.payload["kind"] == "citizen"
               for u in updates)
    assert {u.text for u in updates} == {t("citizen.status_changed", number=number,
                                           status=t("status.handling"))}
    assert updates[0].payload["say"] == {"key": "citizen.status_changed",
                                         "values": {"number": number}}


@sqlite_only
async def test_the_assignee_is_told_in_its_room_or_the_console(services: Services) -> None:
    s = services
    number = (await s.cases.file(CaseDraft(text="路灯不亮", item_code="C0118", grid_code=GRID),
                                 ReporterRef("test", "u"))).case.number

    async def tell(assignee: str) -> OutboxMessage:
        async def work(session: AsyncSession, case: Case, now: datetime) -> None:
            await s.cases.notify_to(session, case, now, assignee, "督办")

        await s.cases.locked(number, work)
        return (await _rows(s))[-1]

    unbound = await tell("street:440604001")
    assert (unbound.channel, unbound.recipient, unbound.payload["kind"]) == (
        "console", "street:440604001", "notice")
    await s.teams.bind_chat("street:440604001", "wecom", "street-robot", datetime.now(UTC))
    bound = await tell("street:440604001")
    assert (bound.channel, bound.recipient) == ("wecom", "street-robot")
