"""What the fixed server stack can do on this machine before gridbot's own work: requests/s
and CPU per request of hypercorn (2 uvloop workers, as `gridbot serve --workers 2`) serving

  1. a plain ASGI app that answers a fixed JSON (hypercorn + h11 alone),
  2. a Quart app that parses a JSON body and answers JSON (the least any route does),
  3. gridbot itself answering the chat API's cheapest turn, 「帮助」 (authentication, the
     per-user limit and the dialog state in Redis; no classifier, no database write),
     on a private PostgreSQL + Redis (benchmarks/harness.py),

with the same lean keep-alive client as benchmarks/load.py, on loopback.

    .venv/bin/python benchmarks/stack_floor.py [--requests 20000] [--concurrency 48]

Prints one JSON line per row and a summary compared with issue 8's load target (1,000
messages/s of whole dialog turns): a turn that files a case costs several times row 3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.city_day import children, process_cpu_s  # noqa: E402
from benchmarks.harness import HttpConnection, Stack, free_port  # noqa: E402

LOAD_TARGET_PER_S = 1000


async def hammer(port: int, path: str, requests: int, concurrency: int,
                 body_of: Any) -> tuple[float, dict[int, int]]:
    """`concurrency` connections, one request at a time each; returns (seconds, statuses)."""
    pending = list(range(requests))
    statuses: dict[int, int] = {}

    async def worker() -> None:
        conn = HttpConnection(port)
        try:
            while pending:
                i = pending.pop()
                status, _ = await conn.post(path, body_of(i))
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            await conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began, statuses


def measure(name: str, pid: int, port: int, path: str, args: argparse.Namespace,
            body_of: Any) -> dict[str, Any]:
    # A warm-up round first: imports, connection pools and the model are loaded lazily.
    asyncio.run(hammer(port, path, min(500, args.requests), args.concurrency, body_of))
    servers = [pid, *children(pid)]
    before = {p: process_cpu_s(p) for p in servers}
    client_before = time.process_time()
    seconds, statuses = asyncio.run(
        hammer(port, path, args.requests, args.concurrency, body_of))
    server_s = sum(process_cpu_s(p) - before[p] for p in servers)
    return {"row": name, "requests": args.requests, "statuses": statuses,
            "requests_per_s": round(args.requests / seconds, 1),
            "server_cpu_ms_per_request": round(server_s * 1000 / args.requests, 3),
            "client_cpu_ms_per_request": round(
                (time.process_time() - client_before) * 1000 / args.requests, 3)}


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
        return measure(name, process.pid, port, "/echo", args,
                       lambda i: json.dumps({"user": f"u{i}"}).encode())
    finally:
        process.terminate()
        process.wait(30)


def gridbot_row(args: argparse.Namespace) -> dict[str, Any]:
    # Each request from a new user: the per-user limit never refuses, as in a real crowd.
    with Stack(workers=2, env={}) as stack:
        assert stack.server is not None
        stack.server.start()
        assert stack.server.process is not None
        return measure("gridbot chat API, 帮助", stack.server.process.pid, stack.server.port,
                       "/api/v1/messages", args,
                       lambda i: json.dumps({"user": f"floor-{i}", "text": "帮助"},
                                            ensure_ascii=False).encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=48)
    args = parser.parse_args()
    rows = [hypercorn_row("hypercorn, plain ASGI", "benchmarks.floor_apps:asgi_app", args),
            hypercorn_row("hypercorn + Quart, JSON in/out", "benchmarks.floor_apps:quart_app",
                          args),
            gridbot_row(args)]
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    print(json.dumps({"load_target_messages_per_s": LOAD_TARGET_PER_S,
                      "floor_rows_at_or_above_target": [
                          r["row"] for r in rows if r["requests_per_s"] >= LOAD_TARGET_PER_S],
                      "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
