"""The load of benchmarks/load.py with faults injected while it runs, on private services.

    .venv/bin/python benchmarks/faults.py [--citizens 900] [--concurrency 24] [--max-seconds 300]

The schedule runs ~120 s: give it enough citizens to be talking all that time (7,000 at 24
at a time on this machine, 2026-12-02); `faults_after_load` lists faults that came too late.

The schedule (from 10 s after the load starts; each step waits for the one before it):
SIGKILL every server process and start the server again; FLUSHALL Redis, then kill and
restart redis-server (no persistence: it comes back empty); restart PostgreSQL with an
immediate (crash-like) stop; then the fake WeChat API expires every access token
(40001, the SDK must refresh), answers 45009 (rate limit), 5xx, then holds answers past the
client's timeout, and the fake Telegram Bot API answers 429 with retry_after, 5xx, then
holds answers past the timeout — each for a while, then back to normal.

Afterwards the same checks as load.py: every confirmed report is one case (none lost, none
twice), the outbox drains, each delivered row reached the fake once (duplicates that follow
a held-back answer are counted apart: the sender cannot know that send landed). Prints one
JSON line with the figures and a log of the faults; what happened to conversations that were
cut is in `restarted`, `resumed` and `lost_dialog_answers` (what the bot said to them).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fakes import FakeApi, FakeTelegramApi, FakeWeChatApi  # noqa: E402
from benchmarks.harness import Stack  # noqa: E402
from benchmarks.load import options_from, parse_args, run, stop_on_sigterm  # noqa: E402

TOKEN_EXPIRY_EVERY_S = 3.0
REPORT_EVERY_S = 0.25  # the idempotency client's pace: a form report every so often
RETRY_EVERY_S = 0.5  # while in 40001 mode, every token dies again this often


class Schedule:
    def __init__(self, deadline: float) -> None:
        self.began = time.monotonic()
        self.deadline = deadline
        self.log: list[dict[str, Any]] = []

    def now(self) -> float:
        return round(time.monotonic() - self.began, 1)

    async def at(self, seconds: float) -> bool:
        """Sleep until `seconds` after the start; False when the load is over by then."""
        wait = self.began + seconds - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        return time.monotonic() < self.deadline

    async def step(self, name: str, action: Callable[[], Any]) -> None:
        start = self.now()
        try:
            await asyncio.to_thread(action)
            outcome = "ok"
        except Exception as exc:  # the log says what failed; the checks still run
            outcome = f"failed: {exc!r}"[:300]
        self.log.append({"at_s": start, "fault": name, "took_s": round(self.now() - start, 1),
                         "outcome": outcome})

    async def mode(self, fake: FakeApi, mode: str, seconds: float) -> None:
        start = self.now()
        fake.set_mode(mode)
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            await asyncio.sleep(min(TOKEN_EXPIRY_EVERY_S, max(0.0, ends - time.monotonic())))
            if mode == "40001" and isinstance(fake, FakeWeChatApi):
                fake.expire_tokens()
        fake.set_mode("ok")
        self.log.append({"at_s": start, "fault": f"{fake.channel} {mode}",
                         "took_s": round(self.now() - start, 1), "outcome": "ok"})


async def inject(stack: Stack, wechat: FakeWeChatApi, telegram: FakeTelegramApi,
                 deadline: float) -> list[dict[str, Any]]:
    schedule = Schedule(deadline)
    server = stack.server
    assert server is not None

    def kill_and_restart() -> None:
        server.kill()
        server.start()

    def flush_and_restart_redis() -> None:
        stack.redis.flushall()
        stack.redis.restart()

    async def processes() -> None:
        if await schedule.at(10):
            await schedule.step("SIGKILL server (all processes) + restart", kill_and_restart)
        if await schedule.at(schedule.now() + 15):
            await schedule.step("Redis FLUSHALL + restart", flush_and_restart_redis)
        if await schedule.at(schedule.now() + 15):
            await schedule.step("PostgreSQL restart (immediate stop)", stack.postgres.restart)

    # The API faults come after the process faults, so that each effect can be told apart;
    # WeChat's and Telegram's run side by side (different channels, different messages).
    async def wechat_api() -> None:
        for mode, seconds in (("40001", 10), ("45009", 8), ("5xx", 8), ("timeout", 15)):
            if await schedule.at(schedule.now() + 5):
                await schedule.mode(wechat, mode, seconds)

    async def telegram_api() -> None:
        for mode, seconds in (("429", 8), ("5xx", 8), ("timeout", 10)):
            if await schedule.at(schedule.now() + 5):
                await schedule.mode(telegram, mode, seconds)

    reports = asyncio.ensure_future(idempotent_reports(stack, schedule))
    await processes()
    if await schedule.at(schedule.now() + 10):
        await asyncio.gather(wechat_api(), telegram_api())
    schedule.log.append(await reports)
    return sorted(schedule.log, key=lambda e: e["at_s"])


async def idempotent_reports(stack: Stack, schedule: Schedule) -> dict[str, Any]:
    """Issue 15's scenario through every process fault: a web form files with a report_id;
    its first try fails (an over-long media URL: 400), and every retry — after that 400, a
    5xx, a refused connection or a cut answer while the server, Redis or PostgreSQL is down —
    sends the same id until the server says 201 (filed) or 409 (filed before). Then the
    database is asked: every id must have its case (lost = 0)."""
    import httpx

    from bot.cases import report_key

    assert stack.server is not None
    url = stack.server.base_url + "/api/v1/reports"
    started = schedule.now()
    ids: list[str] = []
    outcomes = {"400_first": 0, "201": 0, "409": 0, "retries": 0}
    async with httpx.AsyncClient(timeout=10) as client:
        async def one(n: int) -> None:
            report_id = f"form-{n}"
            ids.append(report_id)
            body = {"user": f"form-user-{n}", "text": "小区门口路灯不亮，晚上很黑",
                    "location": {"lat": 23.0215, "lon": 113.1214}, "report_id": report_id}
            overlong = {**body, "media": ["https://x.example/" + "a" * 600]}
            first = await _post(client, url, overlong)
            outcomes["400_first"] += first == 400
            while time.monotonic() < schedule.deadline + 60:
                status = await _post(client, url, body)
                if status in (201, 409):
                    outcomes[str(status)] += 1
                    return
                outcomes["retries"] += 1
                await asyncio.sleep(RETRY_EVERY_S)

        tasks = []
        n = 0
        while time.monotonic() < schedule.deadline and schedule.now() < started + 60:
            tasks.append(asyncio.ensure_future(one(n)))
            n += 1
            await asyncio.sleep(REPORT_EVERY_S)
        await asyncio.gather(*tasks)
    keys = [report_key("http", f"form-user-{i}", report_id) for i, report_id in enumerate(ids)]
    filed = await asyncio.to_thread(_count_filed, stack.postgres.url, keys)
    return {"at_s": started, "fault": "idempotency: a failing filing, then its retry",
            "took_s": round(schedule.now() - started, 1), "outcome": "ok" if filed == len(ids)
            else "lost reports", "sent": len(ids), "filed": filed, "lost": len(ids) - filed,
            **outcomes}


async def _post(client: Any, url: str, body: dict[str, Any]) -> int:
    try:
        return (await client.post(url, json=body)).status_code
    except Exception:  # refused, reset or timed out while a process is down: retry
        return 0


def _count_filed(database_url: str, keys: list[str]) -> int:
    import asyncpg

    async def count() -> int:
        conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            return int(await conn.fetchval(
                "SELECT count(*) FROM filed_reports WHERE key = ANY($1::varchar[])", keys))
        finally:
            await conn.close()

    return asyncio.run(count())


def main(argv: list[str] | None = None) -> int:
    stop_on_sigterm()
    args = parse_args(argv, __doc__ or "")
    options = options_from(args)
    figures = asyncio.run(run(options, inject))
    # The idempotency client's reports are in the database too: the citizens' count is the
    # rest (its own check, every report_id filed once, is its log entry's `lost`).
    form = next(f for f in figures["faults"] if f["fault"].startswith("idempotency"))
    figures["cases_in_db"] -= form["filed"]
    figures["counts_match"] = (
        figures["confirms"] <= figures["cases_in_db"]
        <= figures["confirms"] + figures["confirm_unanswered"]
        and figures["duplicates"] == 0 and figures["lost"] == 0 and form["lost"] == 0
        and figures["outbox_pending"] == 0 and figures["outbox_failed"] == 0
        and figures["missing_at_fake"] == 0 and figures["duplicate_deliveries"] == 0)
    # A fault injected after the citizens were done tested nothing: say so.
    figures["faults_after_load"] = [f["fault"] for f in figures["faults"]
                                    if f["at_s"] >= figures["seconds"]]
    if figures["faults_after_load"]:
        print(f"faults.py: {len(figures['faults_after_load'])} faults came after the load "
              f"ended at {figures['seconds']} s: give it more --citizens", file=sys.stderr)
    print(json.dumps(figures, ensure_ascii=False))
    return 0 if figures["counts_match"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
