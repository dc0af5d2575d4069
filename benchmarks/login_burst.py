"""Does a burst of wrong console passwords stall the server? Issue 15: 30 concurrent bad
logins pushed /healthz from 0.05 s to 8.3 s, because every attempt was hashed (argon2) on
the event loop, past the limit of 10 per account.

Starts `gridbot serve` (one process, on 127.0.0.1 and a free port, a temporary SQLite
database and the embedded Redis stand-in), makes one console account, then

  1. baseline: polls GET /healthz back to back, `--polls` times, with nothing else going on;
  2. burst: `--attempts` browsers (one connection each) fetch the login form, then post a
     wrong password for that one account all at once, while /healthz is polled back to back
     on another connection until every attempt has its answer (at most 5000 polls);

and prints one JSON object: /healthz p50/p99/max in ms for both phases, the answers to the
attempts (401 = the password was checked, 429 = refused before any hashing) and the number
of password checks (401 answers, cross-checked with the audit log's login_failed rows).

    .venv/bin/python benchmarks/login_burst.py [--attempts 40] [--polls 300]
    .venv/bin/python benchmarks/login_burst.py --root /tmp/gridbot-before   # another tree

`--root` runs the server from another checkout (e.g. `git archive HEAD | tar -x -C DIR`) with
this venv, to compare before and after in one run. Bounded: at most 200 attempts and 5000
polls, `--max-seconds` for the whole run; loopback only; everything it starts is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
USERNAME = "bench-op"
PASSWORD = "bench-password-0123"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
# The server runs from --root: `python -c` puts the working directory first on sys.path.
CLI = [sys.executable, "-c", "from shell.cli import app; app()"]
MAX_POLLS = 5000  # bounds the polling in each phase


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(latencies_s: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in latencies_s]
    if not ms:
        return {"polls": 0}
    return {"polls": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(percentile(ms, 99), 2), "max_ms": round(max(ms), 2)}


class Server:
    """`gridbot serve` from `root`, in a session of its own (one signal stops it all)."""

    def __init__(self, root: Path, env: dict[str, str], log: Path) -> None:
        self.root = root
        self.env = env
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", "1"],
                cwd=self.root, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gridbot serve exited with {self.process.returncode}:\n"
                                   + self.log.read_text(errors="replace")[-2000:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("gridbot serve did not answer /healthz:\n"
                           + self.log.read_text(errors="replace")[-2000:])

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(15)
        self.process = None


def add_account(root: Path, env: dict[str, str]) -> None:
    done = subprocess.run([*CLI, "users", "add", USERNAME, "--role", "operator",
                           "--password-stdin"], cwd=root, env=env, input=PASSWORD + "\n",
                          capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"gridbot users add failed: {done.stdout}{done.stderr}")


async def poll(url: str, stop: asyncio.Event | None, count: int) -> list[float]:
    """GET /healthz back to back on one keep-alive connection: `count` times, or until
    `stop` is set (then at most `count`)."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while len(latencies) < count and not (stop is not None and stop.is_set()):
            start = time.perf_counter()
            response = await client.get("/healthz")
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise RuntimeError(f"/healthz answered {response.status_code}")
    return latencies


async def burst(url: str, attempts: int, max_polls: int) -> dict[str, Any]:
    browsers = [httpx.AsyncClient(base_url=url, timeout=60) for _ in range(attempts)]
    try:
        tokens = []
        for browser in browsers:  # each fetches its form (and cookie) first, as a browser does
            page = await browser.get("/console/login")
            found = CSRF_FIELD.search(page.text)
            if found is None:
                raise RuntimeError("no CSRF token in the login form")
            tokens.append(found.group(1))
        await poll(url, None, 5)  # a warm connection for the poller's first request
        stop = asyncio.Event()
        poller = asyncio.ensure_future(poll(url, stop, max_polls))
        started = time.perf_counter()

        async def attempt(browser: httpx.AsyncClient, token: str, n: int) -> int:
            response = await browser.post("/console/login", data={
                "username": USERNAME, "password": f"wrong-{n}", "csrf_token": token})
            return response.status_code

        statuses = await asyncio.gather(*(attempt(b, t, n) for n, (b, t) in
                                          enumerate(zip(browsers, tokens, strict=True))))
        duration = time.perf_counter() - started
        stop.set()
        latencies = await poller
    finally:
        for browser in browsers:
            await browser.aclose()
    counts: dict[str, int] = {}
    for status in statuses:
        counts[str(status)] = counts.get(str(status), 0) + 1
    return {"statuses": counts, "duration_ms": round(duration * 1000, 1),
            "healthz": summary(latencies)}


def audit_failures(database: Path) -> int | None:
    try:
        with sqlite3.connect(database) as db:
            return db.execute("SELECT count(*) FROM staff_audit WHERE action = 'login_failed'"
                              ).fetchone()[0]
    except sqlite3.Error:
        return None


def git_describe(root: Path) -> str:
    done = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"],
                           capture_output=True, text=True)
    if done.returncode != 0:
        return "not a git checkout"
    return done.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    baseline = await poll(url, None, args.polls)
    during = await burst(url, args.attempts, MAX_POLLS)
    return {"baseline": summary(baseline), **during}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=40,
                        help="concurrent wrong passwords for one account (≤ 200)")
    parser.add_argument("--polls", type=int, default=300,
                        help="/healthz polls for the baseline (during the burst: until it ends)")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="gridbot checkout to serve from (default: this one)")
    parser.add_argument("--max-seconds", type=float, default=180)
    args = parser.parse_args()
    args.attempts = max(1, min(args.attempts, 200))
    args.polls = max(10, min(args.polls, MAX_POLLS))
    root = args.root.resolve()

    work = Path(tempfile.mkdtemp(prefix="gridbot-login-burst-"))
    database = work / "bench.db"
    (work / "models").mkdir()  # no model needed: /healthz and the login never classify
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
    env.update(GRIDBOT_DATABASE_URL=f"sqlite+aiosqlite:///{database}", GRIDBOT_REDIS_URL="",
               GRIDBOT_NLP_MODEL_DIR=str(work / "models"), GRIDBOT_API_KEYS="")
    server = Server(root, env, work / "server.log")
    started = time.monotonic()
    try:
        add_account(root, env)
        server.start(timeout_s=min(120.0, args.max_seconds))
        left = args.max_seconds - (time.monotonic() - started)
        result = asyncio.run(asyncio.wait_for(measure(server.url, args), max(5.0, left)))
    finally:
        server.stop()
    checks = result["statuses"].get("401", 0)
    report = {
        "benchmark": "login_burst",
        "root": str(root), "tree": git_describe(root),
        "attempts": args.attempts, "account": USERNAME,
        "password_checks": checks,
        "audit_login_failed": audit_failures(database),
        "refused_without_hashing": result["statuses"].get("429", 0),
        "statuses": result["statuses"],
        "burst_duration_ms": result["duration_ms"],
        "healthz_baseline": result["baseline"],
        "healthz_during_burst": result["healthz"],
        "p99_ratio": (round(result["healthz"]["p99_ms"] / result["baseline"]["p99_ms"], 2)
                      if result["healthz"].get("polls") and result["baseline"].get("p99_ms")
                      else None),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(report, ensure_ascii=False))
    with contextlib.suppress(OSError):
        for path in sorted(work.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        work.rmdir()


if __name__ == "__main__":
    main()
