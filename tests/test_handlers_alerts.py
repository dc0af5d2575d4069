"""handlers/alerts.py: 「关注 …」 and 「取消关注」 in chat — what is a follow, what is a
complaint that starts with 关注, and each answer."""

from __future__ import annotations

import pytest

from bot.messages import InboundMessage
from bot.services import Services
from bot.texts import t
from handlers.alerts import MAX_PLACE_WORDS, from_text


async def _say(s: Services, text: str, user: str = "u1") -> str | None:
    outcome = await from_text(InboundMessage("test", user, text), s)
    return None if outcome is None else "\n".join(r.text for r in outcome.replies)


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_follow_unfollow_and_their_answers(services: Services) -> None:
    s, cfg = services, services.config.alerts
    assert await _say(s, "取消关注") == t("alerts.none")
    assert await _say(s, "关注") == t("alerts.usage")
    assert await _say(s, "关注 火星基地") == t("alerts.unknown_place", place="火星基地")
    assert await _say(s, "/follow 祖庙") == t("alerts.followed", place="祖庙",
                                               radius=int(cfg.radius_m), hour=cfg.hour)
    for _ in range(cfg.max_per_person - 1):
        assert (await _say(s, "关注 梁园") or "").startswith("已关注")
    assert await _say(s, "关注 梁园") == t("alerts.too_many", limit=cfg.max_per_person)
    assert await _say(s, "关注 梁园", user="u2") is not None  # the limit is per person
    assert await _say(s, " /unfollow ") == t("alerts.unfollowed")
    assert await _say(s, "取消关注") == t("alerts.none")


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_other_words_and_long_complaints_are_not_follows(services: Services) -> None:
    assert await _say(services, "祖庙门口垃圾很多") is None
    assert await _say(services, "取消关注祖庙") is None  # 取消关注 stops every follow, alone
    complaint = "关注一下" + "小区门口的垃圾问题好几天没人处理了" * 2
    assert len(complaint) - 2 > MAX_PLACE_WORDS
    assert await _say(services, complaint) is None
