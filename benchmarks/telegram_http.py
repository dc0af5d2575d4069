"""CPU per Bot API call: python-telegram-bot's default httpx request class against the one
gridbot uses (adapters/telegram_http.py, aiohttp), both sending the same `sendMessage` to the
fake Bot API (benchmarks/fakes.py) in this process, on uvloop, `--concurrency` at a time.

    .venv/bin/python benchmarks/telegram_http.py [--calls 3000] [--concurrency 16]

Prints one JSON line per request class (calls/s, CPU ms per call, the fake's share
included: it is the same for both) and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import uvloop
from telegram import Bot
from telegram.request import BaseRequest, HTTPXRequest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.telegram_http import AiohttpRequest  # noqa: E402
from benchmarks.fakes import FakeTelegramApi  # noqa: E402

CARD = "【案件 20261202-0001】\n类别：市容环境 › 暴露垃圾\n地点：同济社区第3网格\n" * 3
WARM_UP = 200


async def measure(name: str, request: BaseRequest, calls: int,
                  concurrency: int) -> dict[str, Any]:
    fake = await FakeTelegramApi().start()
    bot = Bot("7000000001:bench", base_url=fake.base_url, request=request)
    await bot.initialize()
    gate = asyncio.Semaphore(concurrency)

    async def send(_: int) -> None:
        async with gate:
            await bot.send_message(-1001000000001, CARD)

    try:
        await asyncio.gather(*(send(i) for i in range(WARM_UP)))
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(send(i) for i in range(calls)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await bot.shutdown()
        await fake.stop()
    assert len(fake.deliveries) == WARM_UP + calls
    return {"request_class": name, "calls": calls, "calls_per_s": round(calls / wall, 1),
            "cpu_ms_per_call": round(cpu * 1000 / calls, 3)}


async def main(calls: int, concurrency: int) -> None:
    rows = [await measure("HTTPXRequest (python-telegram-bot's default)",
                          HTTPXRequest(connection_pool_size=concurrency), calls, concurrency),
            await measure("AiohttpRequest (gridbot)", AiohttpRequest(concurrency), calls,
                          concurrency)]
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    print(json.dumps({"cpu_ratio_httpx_to_aiohttp": round(
        rows[0]["cpu_ms_per_call"] / rows[1]["cpu_ms_per_call"], 2)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    uvloop.install()
    asyncio.run(main(args.calls, args.concurrency))
