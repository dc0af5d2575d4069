"""bot/cases/rows.py: the rows a filing and a move write, described once — timers, outbox
rows and their payloads, the filed trail, trail entries with masked notes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.rows import (
    MAX_CARD_PHOTOS,
    REMIND_AT,
    FiledRows,
    add_event,
    card_payload,
    filed_events,
    outbox_key,
    outbox_payload,
    outbox_row,
    timer_rows,
)
from bot.catalogue import TimeLimit
from bot.config import PROJECT_ROOT, load_config
from bot.media_store import video_ref
from bot.models import Case, CaseEvent, CaseMedia, CaseTimer, FiledReport, OutboxMessage
from bot.services import Services
from bot.texts import t
from bot.workflow import Status
from bot.worktime import WorkCalendar

CALENDAR = WorkCalendar(load_config(PROJECT_ROOT / "config.toml", environ={}).calendar)
MONDAY_9 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Foshan


def _case(**values: object) -> Case:
    fields: dict[str, object] = dict(
        id=7, number="20261123-0001", status=Status.DISPATCHED, current_level="grid",
        lat=23.0215, lon=113.1214, address="季华五路18号",
        response_due=MONDAY_9 + timedelta(hours=1), handling_due=MONDAY_9 + timedelta(days=2))
    fields.update(values)
    return Case(**fields)


def test_a_dispatched_case_gets_respond_two_reminders_and_the_escalation() -> None:
    case = _case()
    rows = timer_rows(case, MONDAY_9, CALENDAR, working=False)
    assert [r["kind"] for r in rows] == ["respond", "remind", "remind_final", "escalate"]
    assert rows[0]["due_at"] == case.response_due and rows[-1]["due_at"] == case.handling_due
    # Plain time: the reminders at half and four fifths of the handling time.
    span = case.handling_due - MONDAY_9
    assert [r["due_at"] for r in rows[1:3]] == [MONDAY_9 + span * share for share in REMIND_AT]
    assert all(r["case_id"] == 7 and r["level"] == "grid" and r["outcome"] == ""
               and r["created_at"] == MONDAY_9 for r in rows)


def test_working_time_reminders_fall_inside_office_hours() -> None:
    case = _case(handling_due=CALENDAR.add(MONDAY_9, TimeLimit(3, "wd")))
    rows = timer_rows(case, MONDAY_9, CALENDAR, working=True)
    assert all(CALENDAR.is_working_time(r["due_at"]) for r in rows[1:3])
    assert rows[1]["due_at"] < rows[2]["due_at"] < case.handling_due


@pytest.mark.parametrize("changes", [
    {"status": Status.HANDLING},  # only a (re-)dispatch starts the clocks
    {"status": Status.CLOSED},
    {"handling_due": None},
])
def test_no_timers_for_a_case_not_waiting_on_its_assignee(changes: dict[str, object]) -> None:
    assert timer_rows(_case(**changes), MONDAY_9, CALENDAR, working=False) == []


@pytest.mark.parametrize("response_due", [
    None,
    MONDAY_9,  # already due: nothing to wait for
    MONDAY_9 + timedelta(days=3),  # after the handling deadline: the escalation covers it
])
def test_no_respond_timer_unless_it_falls_before_the_deadline(response_due: datetime) -> None:
    kinds = [r["kind"] for r in timer_rows(_case(response_due=response_due), MONDAY_9,
                                           CALENDAR, working=False)]
    assert kinds == ["remind", "remind_final", "escalate"]


def test_the_card_carries_the_place_and_at_most_ten_photos() -> None:
    case = _case()
    assert outbox_payload(case, "card") == {
        "case": "20261123-0001", "status": "dispatched", "level": "grid", "kind": "card",
        "point": [23.0215, 113.1214], "address": "季华五路18号"}
    # Notices and citizen updates do not carry the place.
    assert "point" not in outbox_payload(case, "citizen")
    assert "point" not in outbox_payload(_case(lat=None), "card")
    photos = [f"p{i}" for i in range(MAX_CARD_PHOTOS + 3)]
    assert card_payload(case, photos)["photos"] == photos[:MAX_CARD_PHOTOS]
    assert "photos" not in card_payload(case, [])


def test_outbox_keys_name_the_case_and_differ_unless_made_unique_on_purpose() -> None:
    case = _case()
    first, second = (outbox_key(case, "card", "telegram") for _ in range(2))
    assert first.startswith("20261123-0001:card:telegram:") and first != second
    assert outbox_key(case, "notice", "wecom", "digest") == "20261123-0001:notice:wecom:digest"
    row = outbox_row(case, "wecom", "robot-key", "文字", MONDAY_9, "notice")
    assert row["idempotency_key"].startswith("20261123-0001:notice:wecom:")
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("pending", 0, MONDAY_9)
    assert row["payload"]["kind"] == "notice" and row["recipient"] == "robot-key"


def test_the_filed_trail_is_report_filed_dispatched() -> None:
    events = filed_events("同济社区第3网格")
    assert [(e["action"], e["from_status"], e["to_status"]) for e in events] == [
        ("report", None, "reported"), ("transition", "reported", "filed"),
        ("transition", "filed", "dispatched")]
    assert events[2]["note"] == t("event.dispatched", target="同济社区第3网格")


def test_a_trail_note_is_cleaned_and_masked() -> None:
    session = AsyncSession()  # no database: add() only places the row in the session
    event = add_event(session, _case(), "worker:3:王五", "resolve", "handling", "handled",
                      MONDAY_9, "已联系 13812345678 处理\x00")
    assert event in session.new and event.case_id == 7 and event.at == MONDAY_9
    assert "13812345678" not in event.note and "138****5678" in event.note
    assert "\x00" not in event.note


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_filed_rows_write_one_insert_per_table(services: Services) -> None:
    s = services
    now = s.cases.clock()
    case = Case(number="20990101-0001", status=Status.DISPATCHED, item_code="C0118",
                item_name="路灯", big_class="公用设施", department="区城市管理和综合执法局",
                handling_level="grid", current_level="grid", assignee="grid:440604001030103",
                urgent=False, text="路灯不亮", address="", grid_code="440604001030103",
                channel="test", source="citizen", created_at=now, updated_at=now,
                response_due=now + timedelta(hours=1), handling_due=now + timedelta(days=1),
                reopen_count=0)
    video = video_ref(b"a short video", "mp4")
    rows = FiledRows.of(case, now, timer_rows(case, now, CALENDAR, False), "卡片",
                        "同济社区第3网格", ["photo-1", video], "test:key-1")
    async with s.db.session() as session, session.begin():
        session.add(case)
        await session.flush()
        await rows.write(session, case, ("telegram", "-100123"), now)
    async with s.db.session() as session:
        events = (await session.execute(select(CaseEvent.to_status).where(
            CaseEvent.case_id == case.id).order_by(CaseEvent.id))).scalars().all()
        timers = (await session.execute(select(CaseTimer.kind).where(
            CaseTimer.case_id == case.id))).scalars().all()
        card = (await session.execute(select(OutboxMessage).where(
            OutboxMessage.case_id == case.id))).scalar_one()
        media = (await session.execute(select(CaseMedia.ref, CaseMedia.kind).where(
            CaseMedia.case_id == case.id).order_by(CaseMedia.id))).all()
        key = await session.get(FiledReport, "test:key-1")
    assert events == ["reported", "filed", "dispatched"]
    assert sorted(timers) == ["escalate", "remind", "remind_final", "respond"]
    assert (card.channel, card.recipient, card.text) == ("telegram", "-100123", "卡片")
    assert card.payload["photos"] == ["photo-1", video]
    assert media == [("photo-1", "photo"), (video, "video")]
    assert key is not None and key.case_id == case.id
