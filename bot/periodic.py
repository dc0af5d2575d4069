"""Run a background pass again and again until told to stop, resting while there is no work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


async def repeat(one_pass: Callable[[], Awaitable[int]], stop: asyncio.Event,
                 interval_s: float, log: logging.Logger) -> None:
    """`one_pass` returns how much it did; after a pass that did nothing, wait `interval_s`
    (or until `stop`). A failing pass is logged and tried again: the runner never dies."""
    while not stop.is_set():
        try:
            done = await one_pass()
        except Exception:
            log.exception("background pass failed")
            done = 0
        if not done:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
