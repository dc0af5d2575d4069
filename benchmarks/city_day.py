"""One day of Beijing's 2013 volume (21,000 cases over 35,413 grids) filed through the HTTP
API of 2 server processes on PostgreSQL + Redis, on loopback.

    .venv/bin/python benchmarks/city_day.py [--cases 21000] [--grids 35413] [--workers 2]
        [--layout proxy|shared] [--concurrency 10]

Prints one JSON line: cases_sent, cases_in_db, duplicates, number_gaps, cases_per_s, p50_ms,
p99_ms (and errors, workers, grids), compared with the targets (≥ 500 cases/s, p99 < 100 ms).
Uses the database `gridbot_bench` (created if missing) and Redis db 14, both wiped first.

The client is a lean asyncio HTTP/1.1 keep-alive client (`--concurrency` connections, one
request at a time each); latency is measured at the client, from writing a request to having
read its whole response. `cpu_ms_per_case` splits the CPU the run cost between the server
processes, the PostgreSQL backends of `gridbot_bench` and the client, per case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import CpuMeter, HttpConnection, free_port, process_tree  # noqa: E402
from bot.catalogue import load_catalogue  # noqa: E402
from bot.grid_store import replace_areas  # noqa: E402
from bot.storage import Database, upgrade  # noqa: E402
from shell.ops.simulation import synthetic_city  # noqa: E402
from training.corpus import read_seed_corpus  # noqa: E402

TARGET_CASES_PER_S = 500
TARGET_P99_MS = 100
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/gridbot_bench"
REDIS_URL = os.environ.get("GRIDBOT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


async def prepare_database(grids: int) -> list[tuple[float, float]]:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname='gridbot_bench'"):
            await admin.execute("CREATE DATABASE gridbot_bench")
    finally:
        await admin.close()
    bench = await asyncpg.connect(DB_URL.replace("+asyncpg", ""))
    await bench.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    await bench.close()
    await upgrade(DB_URL)
    city = synthetic_city(grids)
    db = Database(DB_URL)
    await replace_areas(db, city)
    await db.close()
    redis.Redis.from_url(REDIS_URL).flushdb()
    points = [g.geometry.representative_point() for g in city if g.level == "grid"]
    return [(p.y, p.x) for p in points]


def start_servers(workers: int, layout: str) -> tuple[list[subprocess.Popen], list[int]]:
    """`proxy`: `workers` single-process servers on ports of their own, the layout behind a
    reverse proxy (README); the client then spreads its connections over them in turn, as
    a round-robin proxy does. `shared`: one `gridbot serve --workers N` on one port, where
    the kernel spreads connections by a hash of their addresses — with a few keep-alive
    connections often unevenly (see server_cpu_s). Logs go to var/city_day_server*.log
    files: a pipe nobody reads fills up and stalls a server the moment it logs more."""
    env = {**os.environ, "GRIDBOT_DATABASE_URL": DB_URL, "GRIDBOT_REDIS_URL": REDIS_URL,
           # random points over a whole city: every report is its own case
           "GRIDBOT_CASES_DUPLICATE_RADIUS_M": "0"}
    plan = [(free_port(), 1) for _ in range(workers)] if layout == "proxy" else [
        (free_port(), workers)]
    servers = []
    for k, (port, processes) in enumerate(plan):
        with (ROOT / f"var/city_day_server{k}.log").open("wb") as log:  # var/ holds the model
            servers.append(subprocess.Popen(
                [str(ROOT / ".venv/bin/gridbot"), "serve", "--port", str(port), "--workers",
                 str(processes)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log))
    deadline = time.monotonic() + 180
    for k, (port, _) in enumerate(plan):
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
            if time.monotonic() > deadline:
                stop_servers(servers)
                log_tail = (ROOT / f"var/city_day_server{k}.log").read_text(errors="replace")
                raise SystemExit("server did not start: " + log_tail[-2000:])
    if layout == "shared" and workers > 1:
        time.sleep(5)  # /healthz reached one worker: let the others finish starting
    return servers, [port for port, _ in plan]


def stop_servers(servers: list[subprocess.Popen]) -> None:
    for server in servers:
        server.terminate()
    for server in servers:
        server.wait(timeout=30)


async def send(ports: list[int], n: int, concurrency: int, points: list[tuple[float, float]],
               texts: list[str], max_seconds: float) -> tuple[list[float], int, float]:
    """`concurrency` connections, spread over `ports` in turn, each file one report after
    another; the latency of a request is from writing it to having read the whole response
    (client side)."""
    rng = random.Random(7)
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    stop_at = time.monotonic() + max_seconds

    async def worker(port: int) -> None:
        nonlocal errors
        conn = HttpConnection(port)
        try:
            while not queue.empty() and time.monotonic() < stop_at:
                i = queue.get_nowait()
                lat, lon = rng.choice(points)
                body = json.dumps({"user": f"citizen-{i % 5000}", "report_id": f"b{i}",
                                   "text": f"{rng.choice(texts)} [B{i:06d}]",
                                   "location": {"lat": lat, "lon": lon}},
                                  ensure_ascii=False).encode()
                began = time.perf_counter()
                try:
                    status, _ = await conn.post("/api/v1/reports", body)
                    ok = status == 201
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    ok = False
                latencies.append(time.perf_counter() - began)
                errors += not ok
        finally:
            await conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker(ports[k % len(ports)]) for k in range(concurrency)))
    elapsed = time.perf_counter() - began
    return latencies, errors, elapsed


async def bench_backends() -> list[int]:
    """PostgreSQL server processes serving the benchmark database (not other databases)."""
    conn = await asyncpg.connect(DB_URL.replace("+asyncpg", ""))
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = "
                                "'gridbot_bench' AND pid <> pg_backend_pid()")
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


async def count_cases() -> tuple[int, int, int]:
    """Cases stored, duplicates (a report stored twice), and gaps in the case numbers (each
    day's numbers should run 1 … its count: only a filing that rolls back leaves a gap)."""
    conn = await asyncpg.connect(DB_URL.replace("+asyncpg", ""))
    try:
        total = await conn.fetchval("SELECT count(*) FROM cases")
        distinct = await conn.fetchval(
            "SELECT count(DISTINCT substring(text from '\\[B[0-9]+\\]')) FROM cases")
        gaps = await conn.fetchval(
            "SELECT coalesce(sum(highest - stored), 0) FROM (SELECT"
            " max(split_part(number, '-', 2)::int) AS highest, count(*) AS stored"
            " FROM cases GROUP BY split_part(number, '-', 1)) AS days")
    finally:
        await conn.close()
    return total, total - distinct, int(gaps)


def hold_lock() -> object:
    """One run at a time: a second run would wipe the database under the first one's
    servers, and both would count the other's cases."""
    import fcntl

    handle = (ROOT / "var/city_day.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit("another city_day run is in progress (var/city_day.lock)") from None
    return handle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=21_000)
    parser.add_argument("--grids", type=int, default=35_413)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--layout", choices=("proxy", "shared"), default="proxy",
                        help="proxy: a port per process, connections spread in turn; "
                             "shared: one `serve --workers N` port")
    parser.add_argument("--concurrency", type=int, default=10)  # as in RESULTS.md
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    lock = hold_lock()  # noqa: F841 (held until the process exits)
    catalogue = load_catalogue(ROOT / "data/catalogue.csv")
    texts, _ = read_seed_corpus(ROOT / "data/seed_corpus", catalogue)
    points = asyncio.run(prepare_database(args.grids))
    servers, ports = start_servers(args.workers, args.layout)
    try:
        # The PostgreSQL backends of gridbot_bench only (other databases may be busy).
        meter = CpuMeter({"servers": lambda: [p for s in servers for p in process_tree(s.pid)],
                          "postgres": lambda: asyncio.run(bench_backends()),
                          "client": lambda: [os.getpid()]})
        meter.start()
        latencies, errors, elapsed = asyncio.run(
            send(ports, args.cases, args.concurrency, points, texts, args.max_seconds))
        cpu = meter.stop(len(latencies))
    finally:
        stop_servers(servers)
    in_db, duplicates, gaps = asyncio.run(count_cases())
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1)

    figures = {
        "cases_sent": len(latencies), "cases_in_db": in_db, "duplicates": duplicates,
        "number_gaps": gaps,
        "errors": errors, "cases_per_s": round((len(latencies) - errors) / elapsed, 1),
        "p50_ms": pct(0.5), "p99_ms": pct(0.99), "workers": args.workers, "layout": args.layout,
        "grids": args.grids, "concurrency": args.concurrency,
        "target": {"cases_per_s": TARGET_CASES_PER_S, "p99_ms": TARGET_P99_MS},
        "meets_target": (len(latencies) - errors) / elapsed >= TARGET_CASES_PER_S
        and pct(0.99) < TARGET_P99_MS,
        "counts_match": in_db == len(latencies) - errors and duplicates == 0,
        "cpu_ms_per_case": cpu,
        # CPU seconds of each server process, busiest first (in `shared`, also the parent).
        "server_cpu_s": [round(x, 1) for x in meter.seconds("servers")],
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(figures, ensure_ascii=False))
    if errors:
        print(f"{errors} reports were not filed: the servers' logs say why, "
              f"{ROOT / 'var'}/city_day_server*.log", file=sys.stderr)


if __name__ == "__main__":
    main()
