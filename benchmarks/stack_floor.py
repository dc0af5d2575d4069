"""What the fixed server stack can do on this machine before gridbot's own work: requests/s
and CPU per request of hypercorn (2 uvloop workers, as `gridbot serve --workers 2`) serving

  1. a plain ASGI app that answers a fixed JSON (hypercorn + h11 alone),
  2. a Quart app that parses a JSON body and answers JSON (the least any route does),
  3. gridbot itself answering each channel's cheapest turn, 「帮助」 (the per-user limit and
     the dialog state in Redis; no classifier, no database write), each request from a new
     person, on a private PostgreSQL + Redis (benchmarks/harness.py): the chat API
     (authentication), the WeChat AES webhook (signature, decryption, the encrypted passive
     reply) and the Telegram webhook (python-telegram-bot's Update and handlers; the reply
     rides in the webhook's answer),

with the same lean keep-alive client as benchmarks/load.py, on loopback (the client's
WeChat encryption is counted as client CPU).

    .venv/bin/python benchmarks/stack_floor.py [--requests 20000] [--concurrency 48]

Prints one JSON line per row and a summary compared with issue 8's load target (1,000
messages/s of whole dialog turns): the load's turns also classify, locate, file and notify.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from wechatpy.crypto import WeChatCrypto

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fakes import FakeTelegramApi, FakeWeChatApi  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    HttpConnection,
    Stack,
    free_port,
    process_cpu_s,
    process_tree,
)
from benchmarks.load import (  # noqa: E402
    TG_SECRET,
    WX_AES_KEY,
    WX_APP_ID,
    WX_TOKEN,
    channels_env,
    telegram_update,
    wechat_request,
    wechat_xml,
)

LOAD_TARGET_PER_S = 1000


Request = tuple[str, bytes, str, dict[str, str]]  # path, body, content type, headers


async def hammer(port: int, requests: int, concurrency: int,
                 request_of: Callable[[int], Request]) -> tuple[float, dict[int, int]]:
    """`concurrency` connections, one request at a time each; returns (seconds, statuses)."""
    pending = list(range(requests))
    statuses: dict[int, int] = {}

    async def worker() -> None:
        conn = HttpConnection(port)
        try:
            while pending:
                status, _ = await conn.post(*request_of(pending.pop()))
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            await conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began, statuses


async def measure(name: str, pid: int, port: int, args: argparse.Namespace,
                  request_of: Callable[[int], Request]) -> dict[str, Any]:
    # A warm-up round first: imports, connection pools and the model are loaded lazily.
    await hammer(port, min(500, args.requests), args.concurrency,
                 lambda i: request_of(args.requests + i))
    servers = process_tree(pid)
    before = {p: process_cpu_s(p) for p in servers}
    client_before = time.process_time()
    seconds, statuses = await hammer(port, args.requests, args.concurrency, request_of)
    server_s = sum(process_cpu_s(p) - before[p] for p in servers)
    return {"row": name, "requests": args.requests, "statuses": statuses,
            "requests_per_s": round(args.requests / seconds, 1),
            "server_cpu_ms_per_request": round(server_s * 1000 / args.requests, 3),
            "client_cpu_ms_per_request": round(
                (time.process_time() - client_before) * 1000 / args.requests, 3)}


def json_request(body: dict[str, Any], path: str = "/echo") -> Request:
    return path, json.dumps(body, ensure_ascii=False).encode(), "application/json", {}


def hypercorn_row(name: str, target: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/hypercorn"), "--workers", "2", "--worker-class", "uvloop",
         "--bind", f"127.0.0.1:{port}", target],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.post(f"http://127.0.0.1:{port}/echo", json={}, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{target} did not start") from None
                time.sleep(0.3)
        time.sleep(2)  # the second worker
        return asyncio.run(measure(name, process.pid, port, args,
                                   lambda i: json_request({"user": f"u{i}"})))
    finally:
        process.terminate()
        process.wait(30)


async def gridbot_rows(args: argparse.Namespace, extra_env: dict[str, str] | None = None,
                       workers: int = 2) -> list[dict[str, Any]]:
    """「帮助」 from a new person on each channel; one server (of `workers` processes, as
    many as the cores by default) for the three rows."""
    wechat_fake = await FakeWeChatApi().start()
    telegram_fake = await FakeTelegramApi().start()
    crypto = WeChatCrypto(WX_TOKEN, WX_AES_KEY, WX_APP_ID)

    def wechat(i: int) -> Request:
        openid = f"oFLOOR{i:09d}"
        path, body = wechat_request(crypto, openid, wechat_xml(openid, "帮助"))
        return path, body, "text/xml", {}

    def telegram(i: int) -> Request:
        update = telegram_update(700_000_000 + i, {"text": "帮助"})
        return ("/telegram", json.dumps(update, ensure_ascii=False).encode(),
                "application/json", {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})

    rows = [("gridbot chat API, 帮助",
             lambda i: json_request({"user": f"floor-{i}", "text": "帮助"}, "/api/v1/messages")),
            ("gridbot WeChat AES webhook, 帮助", wechat),
            ("gridbot Telegram webhook, 帮助", telegram)]
    try:
        env = {**channels_env(wechat_fake, telegram_fake), **(extra_env or {})}
        with Stack(workers=workers, env=env) as stack:
            assert stack.server is not None
            await asyncio.to_thread(stack.server.start)
            assert stack.server.process is not None
            return [await measure(name, stack.server.process.pid, stack.server.port, args,
                                  request_of) for name, request_of in rows]
    finally:
        await wechat_fake.stop()
        await telegram_fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=48)
    args = parser.parse_args()
    rows = [hypercorn_row("hypercorn, plain ASGI", "benchmarks.floor_apps:asgi_app", args),
            hypercorn_row("hypercorn + Quart, JSON in/out", "benchmarks.floor_apps:quart_app",
                          args),
            *asyncio.run(gridbot_rows(args))]
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    print(json.dumps({"load_target_messages_per_s": LOAD_TARGET_PER_S,
                      "floor_rows_at_or_above_target": [
                          r["row"] for r in rows if r["requests_per_s"] >= LOAD_TARGET_PER_S],
                      "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
