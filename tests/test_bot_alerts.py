"""bot/alerts.py: following an area — the follow, its limit, and the daily note of cases
filed and closed near it, written once per day however many processes look."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.alerts import AreaAlerts, TooManyFollows, _summary
from bot.cases import CaseDraft, ReporterRef
from bot.models import OutboxMessage
from bot.services import Services
from bot.texts import t
from bot.workflow import Status
from tests.conftest import FakeClock

ZUMIAO = (23.0345, 113.1115)  # 祖庙, in the gazetteer
FAR = (23.0215, 113.1214)  # 同济社区, ~1.7 km away
KIOSK = "C0121"
ME = ReporterRef("test", "follower")


def test_the_summary_names_the_commonest_items_first() -> None:
    assert _summary([]) == ""
    assert _summary(["井盖", "路灯", "井盖", "垃圾", "路灯", "井盖", "树木"]) == (
        "井盖×3、路灯×2、垃圾")  # ties by name; at most three


@pytest.mark.parametrize("clocked", ["sqlite+embedded"], indirect=True)
def test_notes_are_due_at_the_configured_hour_local_time(clocked: Services) -> None:
    alerts = clocked.alerts  # hour 18, Asia/Shanghai
    due = alerts.due_since(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))  # 09:00: yesterday's
    assert due == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert alerts.due_since(datetime(2026, 11, 23, 10, 0, tzinfo=UTC)) == datetime(
        2026, 11, 23, 10, 0, tzinfo=UTC)  # 18:00 sharp: today's


async def _file(s: Services, point: tuple[float, float], who: str) -> str:
    spot = s.locator.from_point(*point, "wgs84", "").spot
    assert spot is not None
    filing = await s.cases.file(CaseDraft(text="报刊亭破损", item_code=KIOSK,
                                          grid_code=spot.grid.code, lat=point[0], lon=point[1]),
                                ReporterRef("test", who), attach_duplicates=False)
    return filing.case.number


async def _notes(s: Services) -> list[OutboxMessage]:
    async with s.db.session() as session:
        return list((await session.execute(select(OutboxMessage).where(
            OutboxMessage.case_id.is_(None)).order_by(OutboxMessage.id))).scalars())


async def test_a_daily_note_of_what_was_filed_and_closed_nearby_once_a_day(
        clocked: Services, clock: FakeClock) -> None:
    s = clocked
    follow = await s.alerts.follow(ME, "祖庙")
    assert follow is not None and follow.place == "祖庙" and follow.radius_m == 500
    await _file(s, ZUMIAO, "before")  # filed before the follow: not news to the follower
    clock.advance(minutes=1)
    near = await _file(s, ZUMIAO, "a")
    await _file(s, FAR, "b")  # outside the circle
    assert await s.alerts.send_due() == 0  # 09:00: the first note is due at 18:00
    clock.advance(hours=9, minutes=5)
    # Two processes look at once: one of them writes the note.
    other = AreaAlerts(s.cases, s.locator, s.config.alerts)
    assert sum(await asyncio.gather(s.alerts.send_due(), other.send_due())) == 1
    [note] = await _notes(s)
    assert note.text == t("alerts.daily", place="祖庙", filed=1, closed=0, items="报刊亭")
    assert note.recipient.startswith("reporter:") and note.payload == {
        "kind": "citizen", "area": "祖庙"}
    assert "follower" not in note.recipient  # the outbox holds no channel identity
    assert await s.alerts.send_due() == 0  # today's is written
    clock.advance(days=1)
    assert await s.alerts.send_due() == 0  # a quiet day: no note at all
    clock.advance(hours=1)
    for status in (Status.HANDLING, Status.HANDLED, Status.VERIFIED, Status.CLOSED):
        await s.cases.transition(near, status, "test")
    clock.advance(hours=23)
    assert await s.alerts.send_due() == 1
    assert (await _notes(s))[-1].text == t("alerts.daily", place="祖庙", filed=0, closed=1,
                                           items="报刊亭")


@pytest.mark.parametrize("clocked", ["sqlite+embedded"], indirect=True)
async def test_unknown_places_the_limit_and_unfollowing(clocked: Services) -> None:
    s = clocked
    assert await s.alerts.follow(ME, "火星基地") is None
    assert await s.alerts.unfollow(ME) == 0
    for _ in range(s.config.alerts.max_per_person):
        assert await s.alerts.follow(ME, "梁园") is not None
    with pytest.raises(TooManyFollows):
        await s.alerts.follow(ME, "祖庙")
    assert await s.alerts.follow(ReporterRef("test", "someone"), "祖庙") is not None
    assert await s.alerts.unfollow(ME) == s.config.alerts.max_per_person
    assert await s.alerts.follow(ME, "祖庙") is not None  # room again
