"""An in-memory channel for tests and scripts: push messages in, read the replies out.

Like errbot's test backend: it drives the whole bot with no network and no SDK.
"""

from __future__ import annotations

from bot.messages import InboundMessage, Location, Outcome
from bot.services import Services
from handlers.router import handle

CHANNEL = "test"


class TestChannel:
    __test__ = False  # not a pytest test class

    def __init__(self, services: Services, channel: str = CHANNEL) -> None:
        self.services = services
        self.channel = channel
        self.transcript: list[tuple[str, str]] = []  # (who, text)

    async def send(self, user: str, text: str = "", *, location: tuple[float, float] | None = None,
                   coord: str = "wgs84", media: list[str] | None = None) -> Outcome:
        loc = Location(location[0], location[1], coord) if location else None
        self.transcript.append((user, text or (f"/loc {location}" if loc else "[photo]")))
        outcome = await handle(
            InboundMessage(self.channel, user, text, loc, list(media or [])), self.services
        )
        for reply in outcome.replies:
            self.transcript.append(("bot", reply.text))
        return outcome

    async def say(self, user: str, text: str = "", **kwargs: object) -> str:
        """Send and return all reply texts joined: the common case in tests."""
        outcome = await self.send(user, text, **kwargs)  # type: ignore[arg-type]
        return "\n".join(r.text for r in outcome.replies)
