"""Run a background pass again and again until told to stop, resting while there is no work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from bot.storage import Database


async def repeat(one_pass: Callable[[], Awaitable[int]], stop: asyncio.Event,
                 interval_s: float, log: logging.Logger, busy_rest_s: float = 0.0) -> None:
    """`one_pass` returns how much it did; after a pass that did nothing, wait `interval_s`
    (or until `stop`), after one that did something, `busy_rest_s`. A failing pass is logged
    and tried again: the runner never dies."""
    while not stop.is_set():
        try:
            done = await one_pass()
        except Exception:
            log.exception("background pass failed")
            done = 0
        rest_s = busy_rest_s if done else interval_s
        if rest_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rest_s)


async def sweep_media(db: Database, folder: Path | Callable[[], Path], stop: asyncio.Event,
                      interval_s: float, log: logging.Logger, redis: Redis | None = None,
                      min_age_s: float = 3600.0) -> None:
    """The orphan-photo sweep (bot/media.py) of `folder` (or the one it names at each pass)
    every `interval_s` until `stop`, the first after one interval. A pass examines the
    photos that came of age within the last day (or three intervals, when longer): earlier
    passes saw the older ones. `gridbot media sweep` examines them all."""
    from bot.media import sweep_orphans

    async def one_pass() -> int:
        where = folder() if callable(folder) else folder
        await sweep_orphans(db, where, redis=redis, min_age_s=min_age_s,
                            look_back_s=max(3 * interval_s, 24 * 3600))
        return 0  # rest a whole interval after every pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), interval_s)
    await repeat(one_pass, stop, interval_s, log)
