"""Following an area in chat: 「关注 东华里」 starts a daily note of the cases filed and closed
near it (bot/alerts.py), 「取消关注」 stops every follow."""

from __future__ import annotations

import re

from bot.alerts import TooManyFollows
from bot.cases import ReporterRef
from bot.messages import InboundMessage, Outcome, Reply
from bot.services import Services
from handlers.lang import say

_FOLLOW = re.compile(r"^\s*(?:关注|/follow)\s*(.*)$", re.DOTALL)
_UNFOLLOW = re.compile(r"^\s*(?:取消关注|/unfollow)\s*$")
MAX_PLACE_WORDS = 20  # a place's name; longer words after 关注 are a report


async def from_text(msg: InboundMessage, s: Services) -> Outcome | None:
    """The turn when the words are a follow or an unfollow; else None."""
    who = ReporterRef(msg.channel, msg.user)
    if _UNFOLLOW.match(msg.text):
        stopped = await s.alerts.unfollow(who)
        return Outcome([Reply(say("alerts.unfollowed" if stopped else "alerts.none"))])
    match = _FOLLOW.match(msg.text)
    if match is None:
        return None
    place = match.group(1).strip()
    if len(place) > MAX_PLACE_WORDS:  # 「关注一下小区门口的垃圾问题…」 is a complaint
        return None
    if not place:
        return Outcome([Reply(say("alerts.usage"))])
    try:
        follow = await s.alerts.follow(who, place)
    except TooManyFollows:
        return Outcome([Reply(say("alerts.too_many", limit=s.config.alerts.max_per_person))])
    if follow is None:
        return Outcome([Reply(say("alerts.unknown_place", place=place[:40]))])
    return Outcome([Reply(say("alerts.followed", place=follow.place,
                            radius=int(follow.radius_m), hour=s.config.alerts.hour))])
