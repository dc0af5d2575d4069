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


async def from_worker(msg: InboundMessage, s: Services) -> Outcome | None:
    """The patrol's turn, or None when this is not about a patrol (or not from a worker)."""
    words = msg.text.strip().lower()
    if not msg.live and words not in START_WORDS and words not in END_WORDS:
        return None
    worker = await s.teams.worker(msg.channel, msg.user)
    if worker is None:
        return None
    now = s.cases.clock()
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
        return Outcome([Reply(say("patrol.started", grid=grid.name if grid else patrol.grid_code),
                              [Button(say("patrol.end_button"), END_WORDS[0])])])
    ended = await s.patrols.end(worker, now)
    if ended is None:
        return Outcome([Reply(say("patrol.none_open"),
                              [Button(say("patrol.start_button"), START_WORDS[0])])])
    minutes = int(((ended.ended_at or now) - ended.started_at).total_seconds() // 60)
    return Outcome([Reply(say("patrol.ended", minutes=minutes, km=f"{ended.distance_m / 1000:.2f}",
                            coverage=f"{ended.covered_share:.0%}",
                            left=say("patrol.left_grid") if ended.left_grid else ""))])
