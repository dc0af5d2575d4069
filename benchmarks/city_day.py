"""One day of Beijing's 2013 volume (21,000 cases over 35,413 grids) filed through the HTTP
API of 2 server processes on PostgreSQL + Redis, on loopback.

    .venv/bin/python benchmarks/city_day.py [--cases 21000] [--grids 35413] [--workers 2]

Prints one JSON line: cases_sent, cases_in_db, duplicates, cases_per_s, p50_ms, p99_ms (and
errors, workers, grids), compared with the targets (≥ 500 cases/s, p99 < 100 ms). Uses the
database `gridbot_bench` (created if missing) and Redis db 14, both wiped first.

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

from benchmarks.harness import HttpConnection, free_port  # noqa: E402
from bot.catalogue import load_catalogue  # noqa: E402
from bot.grid_store import replace_areas  # noqa: E402
from bot.simulation import synthetic_city  # noqa: E402
from bot.storage import Database, upgrade  # noqa: E402
from training.corpus import read_seed_corpus  # noqa: E402

TARGET_CASES_PER_S = 500
TARGET_P99_MS = 100
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/gridbot_bench"
REDIS_URL = "redis://127.0.0.1:6379/14"


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


def start_server(port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "GRIDBOT_DATABASE_URL": DB_URL, "GRIDBOT_REDIS_URL": REDIS_URL,
           # random points over a whole city: every report is its own case
           "GRIDBOT_CASES_DUPLICATE_RADIUS_M": "0"}
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gridbot"), "serve", "--port", str(port), "--workers",
         str(workers)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("server did not start: " + server.stderr.read().decode()[-2000:])


async def send(port: int, n: int, concurrency: int, points: list[tuple[float, float]],
               texts: list[str], max_seconds: float) -> tuple[list[float], int, float]:
    """`concurrency` connections each file one report after another; the latency of a
    request is from writing it to having read the whole response (client side)."""
    rng = random.Random(7)
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    stop_at = time.monotonic() + max_seconds

    async def worker() -> None:
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
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return latencies, errors, elapsed


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a live process has used (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
    return found


async def bench_backends() -> list[int]:
    """PostgreSQL server processes serving the benchmark database (not other databases)."""
    conn = await asyncpg.connect(DB_URL.replace("+asyncpg", ""))
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = "
                                "'gridbot_bench' AND pid <> pg_backend_pid()")
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


def cpu_snapshot(server_pid: int) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the server processes and of the benchmark's PostgreSQL
    backends, so the run can say where its CPU went (a figure other load on the machine
    does not change much, unlike wall-clock rates)."""
    servers = [server_pid, *children(server_pid)]
    return {"servers": {p: process_cpu_s(p) for p in servers},
            "postgres": {p: process_cpu_s(p) for p in asyncio.run(bench_backends())}}


def cpu_ms_per_case(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]],
                    client_s: float, cases: int) -> dict[str, float]:
    spent = {part: sum(after[part][p] - before[part].get(p, 0.0) for p in after[part])
             for part in after}
    spent["client"] = client_s
    return {part: round(seconds * 1000 / max(cases, 1), 2) for part, seconds in spent.items()}


async def count_cases() -> tuple[int, int]:
    conn = await asyncpg.connect(DB_URL.replace("+asyncpg", ""))
    try:
        total = await conn.fetchval("SELECT count(*) FROM cases")
        distinct = await conn.fetchval(
            "SELECT count(DISTINCT substring(text from '\\[B[0-9]+\\]')) FROM cases")
    finally:
        await conn.close()
    return total, total - distinct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=21_000)
    parser.add_argument("--grids", type=int, default=35_413)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    catalogue = load_catalogue(ROOT / "data/catalogue.csv")
    texts, _ = read_seed_corpus(ROOT / "data/seed_corpus", catalogue)
    points = asyncio.run(prepare_database(args.grids))
    port = free_port()
    server = start_server(port, args.workers)
    try:
        before = cpu_snapshot(server.pid)
        client_began = time.process_time()
        latencies, errors, elapsed = asyncio.run(
            send(port, args.cases, args.concurrency, points, texts, args.max_seconds))
        client_s = time.process_time() - client_began
        cpu = cpu_ms_per_case(before, cpu_snapshot(server.pid), client_s, len(latencies))
    finally:
        server.terminate()
        server.wait(timeout=30)
    in_db, duplicates = asyncio.run(count_cases())
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1)

    figures = {
        "cases_sent": len(latencies), "cases_in_db": in_db, "duplicates": duplicates,
        "errors": errors, "cases_per_s": round((len(latencies) - errors) / elapsed, 1),
        "p50_ms": pct(0.5), "p99_ms": pct(0.99), "workers": args.workers,
        "grids": args.grids, "concurrency": args.concurrency,
        "target": {"cases_per_s": TARGET_CASES_PER_S, "p99_ms": TARGET_P99_MS},
        "meets_target": (len(latencies) - errors) / elapsed >= TARGET_CASES_PER_S
        and pct(0.99) < TARGET_P99_MS,
        "counts_match": in_db == len(latencies) - errors and duplicates == 0,
        "cpu_ms_per_case": cpu, "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
