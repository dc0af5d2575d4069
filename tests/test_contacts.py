"""bot/contacts.py: when each person last wrote, per channel (WeChat's 48-hour window),
kept in the database with one upsert per message on each dialect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.services import Services

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


async def test_the_latest_message_per_person_and_channel_is_kept(services: Services) -> None:
    windows = services.contacts
    assert await windows.last("wechat", "o-1") is None
    await windows.note("wechat", "o-1", T0)
    assert await windows.last("wechat", "o-1") == T0
    await windows.note("wechat", "o-1", T0 + timedelta(hours=3))
    assert await windows.last("wechat", "o-1") == T0 + timedelta(hours=3)
    # A late-arriving older message never moves the mark back (it would close the window).
    await windows.note("wechat", "o-1", T0 + timedelta(hours=1))
    assert await windows.last("wechat", "o-1") == T0 + timedelta(hours=3)
    # Each person and each channel has a window of their own.
    await windows.note("wechat_mp", "o-1", T0)
    await windows.note("wechat", "o-2", T0 - timedelta(days=1))
    assert await windows.last("wechat", "o-1") == T0 + timedelta(hours=3)
    assert await windows.last("wechat_mp", "o-1") == T0
    assert await windows.last("wechat", "o-2") == T0 - timedelta(days=1)
    assert await windows.last("telegram", "o-1") is None
