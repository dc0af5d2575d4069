"""bot/cases/filing_pg.py: a filed case in ONE PostgreSQL statement — its parameters, and
what the statement writes (the reporter found or made, the case, the rows FiledRows
describes, the card to the bound chat before the grid file's)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from bot.cases import ReporterRef
from bot.cases.filing_pg import file_params, insert_filed
from bot.cases.rows import FiledRows, timer_rows
from bot.config import PROJECT_ROOT, load_config
from bot.media_store import video_ref
from bot.models import Case, CaseEvent, CaseMedia, CaseTimer, FiledReport, OutboxMessage, Reporter
from bot.services import Services
from bot.workflow import Status
from bot.worktime import WorkCalendar

GRID = "440604001030103"  # 同济社区第3网格; the grid file's chat: telegram:-1001000000023
CALENDAR = WorkCalendar(load_config(PROJECT_ROOT / "config.toml", environ={}).calendar)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def _case(number: str, now: datetime = NOW) -> Case:
    return Case(number=number, status=Status.DISPATCHED, item_code="C0118", item_name="路灯",
                big_class="公用设施", department="区城市管理和综合执法局", handling_level="grid",
                current_level="grid", assignee=f"grid:{GRID}", urgent=False, text="路灯不亮",
                address="季华五路18号", lat=23.0215, lon=113.1214, grid_code=GRID,
                channel="test", source="citizen", classifier_confidence=0.9, created_at=now,
                updated_at=now, response_due=now + timedelta(hours=1),
                handling_due=now + timedelta(days=2), reopen_count=0)


def _rows(case: Case, media: list[str], key: str = "") -> FiledRows:
    timers = timer_rows(case, case.created_at, CALENDAR, False)
    return FiledRows.of(case, case.created_at, timers, "卡片", "同济社区第3网格", media, key)


def test_parameters_are_naive_utc_and_one_array_per_column() -> None:
    case = _case("20261123-0001")
    video = video_ref(b"clip", "mp4")
    rows = _rows(case, ["photo-1", video], "test:k")
    params = file_params(case, ReporterRef("test", "u1", "13812345678"), rows,
                         ("telegram", "-100999"), NOW)
    # The raw statement bypasses the column types: times go in as naive UTC.
    assert params["now"] == datetime(2026, 11, 23, 1, 0)
    assert params["c_created_at"] == datetime(2026, 11, 23, 1, 0)
    assert params["c_handling_due"] == datetime(2026, 11, 25, 1, 0)
    assert params["c_status"] == "dispatched" and params["c_number"] == "20261123-0001"
    assert (params["channel"], params["external_id"], params["phone"]) == (
        "test", "u1", "13812345678")
    assert params["ev_to"] == ["reported", "filed", "dispatched"]
    assert len(params["ev_actor"]) == len(params["ev_note"]) == 3
    assert params["tm_kind"] == [r["kind"] for r in rows.timers]
    assert all(d.tzinfo is None for d in params["tm_due"])
    assert (params["media"], params["media_kinds"]) == (["photo-1", video], ["photo", "video"])
    assert (params["room_channel"], params["room_chat"]) == ("telegram", "-100999")
    assert json.loads(params["card_payload"]) == rows.card_payload
    assert params["report_key"] == "test:k"
    no_room = file_params(case, ReporterRef("test", "u1"), rows, None, NOW)
    assert no_room["room_channel"] is None and no_room["room_chat"] is None
    assert no_room["card_uuid"] != params["card_uuid"]  # a new card key per statement


@pytest.mark.parametrize("services", ["postgres+redis"], indirect=True)
async def test_one_statement_writes_the_case_and_everything_filed_with_it(
        services: Services) -> None:
    s = services
    who = ReporterRef("test", "pg-user", "13812345678")
    first = _case("20261123-0001", s.cases.clock())
    async with s.db.session() as session, session.begin():
        await insert_filed(session, first, who, _rows(first, ["photo-1"], "test:k1"),
                           s.cases.filing._configured_room(GRID), first.created_at)
    assert first.id is not None and first.reporter_id is not None
    # A second report of the same person finds their row; a chat bound since wins over the
    # grid file's chat; no report key, no filed_reports row.
    await s.teams.bind_chat(GRID, "wecom", "robot-1", datetime.now(UTC))
    second = _case("20261123-0002", s.cases.clock())
    async with s.db.autocommit_engine.connect() as conn:  # as filing runs it: autocommit
        await insert_filed(conn, second, who, _rows(second, []), ("telegram", "-100x"),
                           second.created_at)
    assert second.reporter_id == first.reporter_id and second.id != first.id
    async with s.db.session() as session:
        reporters = (await session.execute(select(func.count()).select_from(Reporter).where(
            Reporter.external_id == "pg-user"))).scalar_one()
        stored = await session.get(Case, first.id)
        events = (await session.execute(select(CaseEvent.to_status).where(
            CaseEvent.case_id == first.id).order_by(CaseEvent.id))).scalars().all()
        timers = (await session.execute(select(CaseTimer.kind).where(
            CaseTimer.case_id == first.id).order_by(CaseTimer.id))).scalars().all()
        cards = {row.case_id: row for row in (await session.execute(
            select(OutboxMessage))).scalars()}
        media = (await session.execute(select(CaseMedia.ref).where(
            CaseMedia.case_id == first.id))).scalars().all()
        keys = (await session.execute(select(FiledReport.key, FiledReport.case_id))).all()
    assert reporters == 1
    assert stored is not None and stored.number == "20261123-0001"
    assert stored.created_at == first.created_at and stored.status == "dispatched"
    assert events == ["reported", "filed", "dispatched"]
    assert timers == ["respond", "remind", "remind_final", "escalate"]
    assert (cards[first.id].channel, cards[first.id].recipient) == (
        "telegram", "-1001000000023")  # the grid file's chat: nothing bound yet
    assert cards[first.id].idempotency_key.startswith("20261123-0001:card:telegram:")
    assert cards[first.id].payload["photos"] == ["photo-1"]
    assert (cards[second.id].channel, cards[second.id].recipient) == ("wecom", "robot-1")
    assert media == ["photo-1"] and keys == [("test:k1", first.id)]
