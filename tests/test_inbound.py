"""adapters/inbound.py: the one way chat messages come in — a platform's retry runs nothing
twice, a flood gets one polite word and then silence, the reply cache gives a retry the first
answer (waiting for one still being worked). On both storages."""

from __future__ import annotations

import asyncio

from adapters import inbound
from bot.messages import InboundMessage
from bot.services import Services
from bot.texts import t


async def test_a_message_id_passes_once_per_channel(services: Services) -> None:
    assert await inbound.first_time(services, "wechat", "m-1")
    assert not await inbound.first_time(services, "wechat", "m-1")
    assert await inbound.first_time(services, "wecom", "m-1")  # channels do not collide


async def test_a_message_remembers_what_rides_with_its_dedupe_mark(services: Services) -> None:
    key = "gridbot:test:window:o-1"
    assert await inbound.first_time(services, "wechat", "m-2", remember={key: ("42", 60)})
    assert await services.redis.get(key) in (b"42", "42")


async def test_a_flood_gets_one_polite_word_then_silence(services: Services) -> None:
    services.config.limits.per_user_per_minute = 2
    msg = InboundMessage("wechat", "o-flood", "帮助", language="en")
    answers = [await inbound.converse(services, msg) for _ in range(4)]
    assert all(a.replies for a in answers[:2])  # the dialog answered
    assert [r.text for r in answers[2].replies] == [t("guard.slow_down", "en")]
    assert answers[3].replies == []
    # Another person is not held back by this one's flood.
    other = await inbound.converse(services, InboundMessage("wechat", "o-calm", "帮助"))
    assert other.replies and other.replies[0].text != t("guard.slow_down")


async def test_the_reply_cache_replays_the_first_answer(services: Services) -> None:
    cache = inbound.ReplyCache(services, "wx", ttl_s=60)
    assert await cache.replay("m-3") is None
    await cache.keep("m-3", "<xml>first</xml>")
    assert await cache.replay("m-3") == "<xml>first</xml>"
    assert await inbound.ReplyCache(services, "wecom").replay("m-3") is None


async def test_a_retry_waits_for_the_answer_still_being_worked(services: Services) -> None:
    cache = inbound.ReplyCache(services, "wx", ttl_s=60)

    async def answer_later() -> None:
        await asyncio.sleep(0.2)
        await cache.keep("m-4", "later")

    worker = asyncio.ensure_future(answer_later())
    assert await cache.replay("m-4", wait_s=5.0) == "later"
    await worker
    assert await cache.replay("m-5", wait_s=0.1) is None  # gives up after its wait
