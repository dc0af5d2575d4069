"""Work a channel starts and does not wait for (a late reply, a media download)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger(__name__)


class BackgroundWork:
    def __init__(self, what: str) -> None:
        self.what = what
        self.tasks: set[asyncio.Task[Any]] = set()

    def start(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(self._logged(work))
        self.tasks.add(task)  # a reference, so the task is not collected mid-way
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Wait for everything started so far (tests, shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks))

    async def _logged(self, work: Awaitable[Any]) -> None:
        try:
            await work
        except Exception:
            log.exception("%s background work failed", self.what)
