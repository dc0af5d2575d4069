"""bot/periodic.py: the loop every background runner uses — rests when idle, goes on when
busy, survives a failing pass, stops when told."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from pathlib import Path

import pytest

from bot.periodic import repeat, sweep_media
from bot.services import Services

log = logging.getLogger("tests.periodic")


async def test_busy_passes_follow_each_other_and_an_idle_one_rests() -> None:
    stop = asyncio.Event()
    work = [3, 2, 0]  # what each pass does
    calls: list[float] = []

    async def one_pass() -> int:
        calls.append(time.monotonic())
        if not work:
            stop.set()
            return 0
        return work.pop(0)

    # Busy passes rest 0 s; the idle one rests its interval (cut short by nothing).
    await asyncio.wait_for(repeat(one_pass, stop, interval_s=0.2, log=log), 5)
    assert len(calls) == 4
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] < 0.1 and gaps[1] < 0.1 and gaps[2] >= 0.19


async def test_stop_ends_the_rest_at_once() -> None:
    stop = asyncio.Event()
    passes = 0

    async def one_pass() -> int:
        nonlocal passes
        passes += 1
        asyncio.get_running_loop().call_later(0.02, stop.set)
        return 0

    started = time.monotonic()
    await asyncio.wait_for(repeat(one_pass, stop, interval_s=60, log=log), 5)
    assert passes == 1 and time.monotonic() - started < 1


async def test_a_failing_pass_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    attempts = 0

    async def one_pass() -> int:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("database away")
        stop.set()
        return 1

    with caplog.at_level(logging.ERROR, logger=log.name):
        await asyncio.wait_for(repeat(one_pass, stop, interval_s=0.01, log=log), 5)
    assert attempts == 3
    assert [r.getMessage() for r in caplog.records] == ["background pass failed"] * 2


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_the_media_sweep_waits_an_interval_then_removes_old_orphans(
        services: Services, tmp_path: Path) -> None:
    folder = tmp_path / "mp"
    folder.mkdir()
    orphan, fresh = folder / f"{'a' * 32}.jpg", folder / f"{'b' * 32}.jpg"  # as stored
    for path in (orphan, fresh):
        path.write_bytes(b"\xff\xd8\xff photo")
    two_hours_ago = time.time() - 7200
    os.utime(orphan, (two_hours_ago, two_hours_ago))
    stop = asyncio.Event()
    sweeping = asyncio.create_task(sweep_media(services.db, lambda: folder, stop,
                                               interval_s=0.05, log=log))
    await asyncio.sleep(0.01)
    assert orphan.exists()  # the first pass comes after one interval, not at start-up
    for _ in range(100):
        if not orphan.exists():
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(sweeping, 5)
    assert not orphan.exists() and fresh.exists()  # younger than an hour: kept
