"""A grid worker's patrol in chat: 「开始巡查」, their live location as the track, 「结束巡查」
with what the patrol covered. What they find on the way they report like anyone (it is
filed as a patrol report: handlers/report.py)."""

from __future__ import annotations

from bot.messages import Button, InboundMessage, Outcome, Reply
from bot.patrol import PatrolError
from bot.services import Services
from handlers.lang import say

START_WORDS = ("开始巡查", "/patrol_start", "start patrol")
END_WORDS = ("结束巡查", "/patrol_end", "end patrol")
LIVE_CHANNELS = ("telegram",)  # channels that share a live location; others send pins


async def from_worker(msg: InboundMessage, s: Services) -> Outcome | None:
    """The patrol's turn, or None when this is not about a patrol (or not from a worker)."""
    words = msg.text.strip().lower()
    if not msg.live and words not in START_WORDS and words not in END_WORDS:
        return None
    worker = await s.teams.worker(msg.channel, msg.user)
    if worker is None:
        return None
    now = s.cases.clock()
    if msg.live == "pin":  # a periodic pin (WeCom): a point of the patrol under way
        on_patrol = msg.location is not None and await s.patrols.add_point(
            worker, msg.location.lat, msg.location.lon, now, msg.location.coord)
        if not on_patrol or "step" in await s.dialogs.load(msg.channel, msg.user):
            return None  # an ordinary location (a report's place): the dialog's
        return Outcome([Reply(say("patrol.pin_kept"), [Button(say("patrol.end_button"),
                                                             END_WORDS[0])])])
    if msg.live:
        on_patrol = msg.location is not None and await s.patrols.add_point(
            worker, msg.location.lat, msg.location.lon, now, msg.location.coord)
        if on_patrol or msg.live == "update":
            return Outcome([])  # silent: a live location updates every few seconds
        return Outcome([Reply(say("patrol.not_started"),
                              [Button(say("patrol.start_button"), START_WORDS[0])])])
    if words in START_WORDS:
        try:
            patrol = await s.patrols.start(worker, now)
        except PatrolError:
            return Outcome([Reply(say("patrol.grid_workers_only"))])
        grid = s.grids.get(patrol.grid_code)
        text = say("patrol.started", grid=grid.name if grid else patrol.grid_code)
        if msg.channel not in LIVE_CHANNELS:
            text += "\n" + say("patrol.started_pins")
        return Outcome([Reply(text, [Button(say("patrol.end_button"), END_WORDS[0])])])
    ended = await s.patrols.end(worker, now)
    if ended is None:
        return Outcome([Reply(say("patrol.none_open"),
                              [Button(say("patrol.start_button"), START_WORDS[0])])])
    minutes = int(((ended.ended_at or now) - ended.started_at).total_seconds() // 60)
    text = say("patrol.ended", minutes=minutes, km=f"{ended.distance_m / 1000:.2f}",
             coverage=f"{ended.covered_share:.0%}",
             left=say("patrol.left_grid") if ended.left_grid else "")
    planned = await s.patrols.planned_places(ended.grid_code)
    if planned:  # the grid's duty list: which planned places this patrol passed
        missing = [name for name in planned if name not in (ended.places or [])]
        text += "\n" + say("duty.ticked", done=len(planned) - len(missing), total=len(planned),
                         missing=say("duty.missing", places="、".join(missing)) if missing
                         else "")
    return Outcome([Reply(text)])
