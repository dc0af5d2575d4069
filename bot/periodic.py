"""Run a background pass again and again until told to stop, resting while there is no work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


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
