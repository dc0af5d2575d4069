"""bot/digest.py: the district's weekly digest — due each Monday at the alerts hour, sent
to the chat bound to the district, written once per week across processes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.cases import CaseDraft, ReporterRef
from bot.digest import WeeklyDigest
from bot.models import OutboxMessage
from bot.services import Services
from bot.texts import t
from tests.conftest import FakeClock

DISTRICT = "440604"  # 禅城区
GRID = "440604001030103"


@pytest.mark.parametrize("clocked", ["sqlite+embedded"], indirect=True)
def test_the_weeks_moment_is_monday_at_the_alerts_hour(clocked: Services) -> None:
    digest = clocked.digest  # hour 18, Asia/Shanghai
    monday_6pm = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert digest.week_start(datetime(2026, 11, 23, 9, 59, tzinfo=UTC)) is None  # not yet
    assert digest.week_start(monday_6pm) == monday_6pm
    assert digest.week_start(datetime(2026, 11, 29, 15, 0, tzinfo=UTC)) == monday_6pm  # Sun 23:00
    # Sunday 23:00 UTC is already Monday 07:00 in Foshan: before that Monday's moment.
    assert digest.week_start(datetime(2026, 11, 29, 23, 0, tzinfo=UTC)) is None


async def _digests(s: Services) -> list[OutboxMessage]:
    async with s.db.session() as session:
        return list((await session.execute(select(OutboxMessage).where(
            OutboxMessage.idempotency_key.startswith("digest:")))).scalars())


async def test_a_bound_district_gets_one_digest_a_week(clocked: Services,
                                                       clock: FakeClock) -> None:
    s = clocked
    clock.now = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)  # Monday 18:05
    assert await s.digest.send_due() == 0  # no chat bound to the district: nobody to tell
    await s.teams.bind_chat(f"district:{DISTRICT}", "wecom", "district-robot", clock())
    # Two processes at once: the week's key lets one of them write it.
    other = WeeklyDigest(s.cases, s.config.alerts, s.gazetteer)
    assert sum(await asyncio.gather(s.digest.send_due(), other.send_due())) == 1
    [row] = await _digests(s)
    assert (row.channel, row.recipient) == ("wecom", "district-robot")
    assert row.idempotency_key == f"digest:{DISTRICT}:2026-11-23"
    assert row.text == t("digest.quiet", district="禅城区")  # nothing filed last week
    assert await s.digest.send_due() == 0
    # The next week, several people report one problem at one spot: the hot spot is named.
    for n, text in enumerate(["报刊亭被撞坏了，玻璃碎了一地", "报刊亭的玻璃被撞碎了",
                              "报刊亭被车撞坏，玻璃碎一地", "被撞坏的报刊亭玻璃碎了"]):
        clock.now = datetime(2026, 11, 25, 2, n, tzinfo=UTC)
        await s.cases.file(CaseDraft(text=text, item_code="C0121",
                                     grid_code=GRID, lat=23.0215, lon=113.1214),
                           ReporterRef("test", f"u{n}"), attach_duplicates=False)
    clock.now = datetime(2026, 11, 30, 10, 5, tzinfo=UTC)
    assert await s.digest.send_due() == 1
    latest = max(await _digests(s), key=lambda r: r.id)
    assert latest.text.startswith(t("digest.week", district="禅城区", lines="\0")
                                  .split("\0")[0])
    assert "同济社区第3网格" in latest.text
