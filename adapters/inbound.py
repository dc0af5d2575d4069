"""The one way a chat message comes in, whatever the channel: drop the platform's retry
(dedupe), hold back a flood (the per-user limit), run the turn (handlers.router.handle), and
keep the answer for a retry that comes while or after it runs (the reply cache).

A channel translates its SDK's message into an InboundMessage and calls `converse`; a channel
that answers inside the HTTP response (WeChat, WeCom) keeps that answer in a `ReplyCache` so
the platform's retry gets the same words and nothing runs twice. Dedupe marks and caches live
in Redis (or the embedded store), so they hold across server processes.
"""

from __future__ import annotations

import asyncio
import time

from adapters.guard import chat_turn_allowed
from bot import kv
from bot.kv import PREFIX, Remember
from bot.messages import InboundMessage, Outcome, Reply
from bot.services import Services
from bot.texts import t
from handlers.router import handle

SLOW_DOWN = "guard.slow_down"


async def first_time(services: Services, channel: str, key: str,
                     remember: Remember | None = None) -> bool:
    """False for a message the platform already delivered (they retry on errors and slow
    answers). `remember`: SETs to make in the same round trip."""
    return await services.dedupe.first_time(channel, key, remember=remember)


async def held_back(services: Services, channel: str, user: str, language: str = "zh",
                    remember: Remember | None = None) -> Outcome | None:
    """None when the person's turn may run; else what a flood gets: one polite word in the
    first refused message of the window, then silence (so a flood gets no echo)."""
    allowed, tell = await chat_turn_allowed(services, channel, user, remember)
    if allowed:
        return None
    return Outcome([Reply(t(SLOW_DOWN, language))] if tell else [])


async def converse(services: Services, msg: InboundMessage,
                   remember: Remember | None = None) -> Outcome:
    """One turn of a person's conversation, within their rate limit."""
    refused = await held_back(services, msg.channel, msg.user, msg.language, remember)
    if refused is not None:
        return refused
    return await handle(msg, services)


async def follow(services: Services, msg: InboundMessage) -> Outcome:
    """A message that is not a turn of the conversation but a point of a live track
    (Telegram sends one every few seconds while a worker patrols): no limit, no reply."""
    return await handle(msg, services)


class ReplyCache:
    """The answer given in the HTTP response to a message, kept for the platform's retries
    (WeChat and WeCom retry three times within ~15 s when the answer is slow)."""

    def __init__(self, services: Services, name: str, ttl_s: int = 120) -> None:
        self.services = services
        self.name = name
        self.ttl_s = ttl_s

    def _key(self, message_key: str) -> str:
        return f"{PREFIX}{self.name}reply:{message_key}"

    async def keep(self, message_key: str, answer: str) -> None:
        await self.services.redis.set(self._key(message_key), answer, ex=self.ttl_s)

    async def replay(self, message_key: str, wait_s: float = 0.0) -> str | None:
        """The first attempt's answer; waits up to `wait_s` for one still being worked."""
        deadline = time.monotonic() + wait_s
        while True:
            answer = await self.services.redis.get(self._key(message_key))
            if answer is not None or time.monotonic() >= deadline:
                return kv.as_text(answer) if answer is not None else None
            await asyncio.sleep(0.05)
