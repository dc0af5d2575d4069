"""The project's own message types: adapters translate channels to and from these."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float
    coord: str = "wgs84"  # WeChat sends gcj02
    label: str = ""  # the channel's words for the place (WeChat's Label, a venue's name)


@dataclass
class InboundMessage:
    channel: str  # "http", "wechat", "telegram", "test" …
    user: str  # the channel's id for the person; never shown to others
    text: str = ""
    location: Location | None = None
    media: list[str] = field(default_factory=list)  # channel media references (photos)
    message_id: str = ""
    language: str = "zh"
    # A live location (Telegram's shared position): "start" when it is first shared,
    # "update" as it moves. A worker's is their patrol's track; a citizen's first one is a
    # pin like any other, its updates are ignored. "pin": a channel with no live location
    # (WeCom) sends its pins so: on a patrol each is the track's next point, and when a
    # report is under way it is that report's place too.
    live: str = ""


@dataclass(frozen=True)
class Button:
    label: str
    value: str  # what the bot receives as text when the button is pressed


@dataclass
class Reply:
    text: str
    buttons: list[Button] = field(default_factory=list)


@dataclass
class Outcome:
    replies: list[Reply]
    case: dict[str, Any] | None = None  # the case this turn filed or showed, public fields

    def as_dict(self) -> dict[str, Any]:
        return {"replies": [asdict(r) for r in self.replies], "case": self.case}
