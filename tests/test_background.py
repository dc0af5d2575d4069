"""adapters/background.py: work a channel starts without waiting for it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adapters.background import BackgroundWork


async def test_started_work_runs_and_drain_waits_for_it_all() -> None:
    work = BackgroundWork("test")
    done: list[str] = []

    async def job(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        done.append(name)
        if name == "first":  # work started by work: drain waits for that too
            work.start(job("late", 0))

    work.start(job("first", 0.01))
    work.start(job("second", 0))
    assert done == [] and len(work.tasks) == 2  # started, not awaited
    await work.drain()
    assert sorted(done) == ["first", "late", "second"]
    assert work.tasks == set()  # finished tasks are let go


async def test_a_failure_is_logged_with_what_failed_and_never_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    work = BackgroundWork("wechat reply")

    async def boom() -> None:
        raise RuntimeError("the API is down")

    async def fine() -> None:
        return None

    with caplog.at_level(logging.ERROR, logger="adapters.background"):
        work.start(boom())
        work.start(fine())
        await work.drain()  # does not raise
    [record] = caplog.records
    assert record.getMessage() == "wechat reply background work failed"
    assert record.exc_info is not None and "the API is down" in str(record.exc_info[1])
