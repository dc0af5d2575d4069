"""Private services for the load and fault benchmarks, so that killing, flushing and
restarting them cannot hurt anyone else on the machine: a PostgreSQL cluster of our own
(initdb into a temp dir, trust auth, a free port), a redis-server of our own, and
`gridbot serve` against them. Every process started here is stopped by `Services.close`,
also after a failure or Ctrl-C (use it as a context manager)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
GRIDBOT = ROOT / ".venv/bin/gridbot"
DB_NAME = "gridbot"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check: Any, what: str, timeout_s: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{what} did not come up in {timeout_s:.0f} s\n{tail}")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a live process has used (Linux /proc); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and every live process below it."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
        parents.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


class CpuMeter:
    """Where a run's CPU went: seconds per named group of processes between `start` and
    `stop`, per unit of work. A figure that other load on the machine changes much less
    than wall-clock rates. A process that dies in between takes its seconds with it (a
    killed server in a fault run), so the split is exact only for runs without restarts."""

    def __init__(self, groups: dict[str, Any]) -> None:
        self.groups = groups  # name → callable returning the pids to count now
        self.before: dict[str, dict[int, float]] = {}
        self.after: dict[str, dict[int, float]] = {}

    def _snapshot(self) -> dict[str, dict[int, float]]:
        return {name: {pid: process_cpu_s(pid) for pid in pids()}
                for name, pids in self.groups.items()}

    def start(self) -> None:
        self.before = self._snapshot()

    def stop(self, units: int) -> dict[str, float]:
        """CPU milliseconds per unit (case, message) of each group."""
        self.after = self._snapshot()
        return {name: round(sum(self.seconds(name)) * 1000 / max(units, 1), 2)
                for name in self.after}

    def seconds(self, group: str) -> list[float]:
        """CPU seconds of each process of `group` between start and stop, busiest first (an
        uneven spread over the server workers shows here)."""
        spent = [now - self.before[group].get(pid, 0.0)
                 for pid, now in self.after[group].items()]
        return sorted(spent, reverse=True)


class PrivatePostgres:
    """A throw-away cluster. PostgreSQL refuses to run as root, so as root the cluster runs
    as the `postgres` system user. fsync is off: nothing here must survive a machine crash,
    and a crash of PostgreSQL itself (immediate stop) is still recovered from the WAL."""

    def __init__(self, workdir: Path) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.bin = Path(bins[-1]).parent
        self.dir = workdir / "pg"
        self.log = workdir / "pg.log"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{DB_NAME}"

    @property
    def dsn(self) -> str:
        return self.url.replace("+asyncpg", "")

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        self.dir.mkdir(parents=True)
        self.log.touch()
        if self.user:
            info = pwd.getpwnam(self.user)
            for path in (self.dir.parent, self.dir, self.log):
                os.chown(path, info.pw_uid, info.pw_gid)
        self._run("initdb", "-D", str(self.dir), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--no-instructions")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  DB_NAME)

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
                   "-c fsync=off -c full_page_writes=off -c max_connections=200 "
                   "-c shared_buffers=128MB")
        self._run("pg_ctl", "-D", str(self.dir), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")

    def pids(self) -> list[int]:
        """The postmaster and its backends (none while stopped)."""
        try:
            return process_tree(int((self.dir / "postmaster.pid").read_text().split()[0]))
        except (FileNotFoundError, ValueError, IndexError):
            return []

    def stop(self, mode: str = "fast") -> None:
        if (self.dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.dir), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> None:
        """A crash-like stop (no checkpoint, clients cut) and a start with WAL recovery."""
        self.stop("immediate")
        self.start()


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.port = free_port()
        self.log = workdir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise RuntimeError("redis-server is not installed")
        self.process = subprocess.Popen(
            [redis_server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--logfile", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: self._client().ping(), "redis-server", 20, self.log)

    def _client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_timeout=2)

    def flushall(self) -> None:
        self._client().flushall()

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process is not None else []

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        """Without persistence a restart is an empty Redis, as after FLUSHALL."""
        self.stop()
        self.start()


class Server:
    """`gridbot serve --workers N` in a session of its own, so that one signal to the process
    group reaches the hypercorn parent and every worker it spawned."""

    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.env = env
        self.workers = workers
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 180) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(GRIDBOT), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.workers)],
                env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.starts += 1

        # One client for all the polls: each new httpx client builds an SSL context (~30 ms).
        with httpx.Client(timeout=2) as http:
            def up() -> bool:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"gridbot serve exited with {self.process.returncode}: "
                                       + self.log.read_text(errors="replace")[-2000:])
                return http.get(self.base_url + "/healthz").status_code == 200

            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    if up():
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError("gridbot serve did not answer /healthz: "
                                       + self.log.read_text(errors="replace")[-2000:])
                time.sleep(0.3)
        # With several workers /healthz may have reached only the first one that is up:
        # give the others the time they take to load the model too.
        if self.workers > 1:
            time.sleep(3)

    def pids(self) -> list[int]:
        """The server's parent and its workers (none while stopped)."""
        return process_tree(self.process.pid) if self.process is not None else []

    def _signal(self, sig: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL to every process of the server: nothing gets to clean up."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self._signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        self.kill()  # stragglers of the group, if any


class Stack:
    """PostgreSQL, Redis and the server, all private; a context manager that stops them."""

    def __init__(self, workers: int, env: dict[str, str],
                 keep_log: Path | None = None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="gridbot-load-"))
        self.keep_log = keep_log  # the server's log is copied here at the end
        self.postgres = PrivatePostgres(self.workdir)
        self.redis = PrivateRedis(self.workdir)
        self.extra_env = env
        self.workers = workers
        self.server: Server | None = None

    def __enter__(self) -> Stack:
        try:
            self.postgres.init()
            self.redis.start()
            self.server = Server(self.env(), self.workers, self.workdir / "server.log")
        except BaseException:
            self.close()
            raise
        return self

    def env(self) -> dict[str, str]:
        return {**os.environ, "GRIDBOT_DATABASE_URL": self.postgres.url,
                "GRIDBOT_REDIS_URL": self.redis.url, **self.extra_env}

    def close(self) -> None:
        for stop in (self.server.stop if self.server else None, self.redis.stop,
                     self.postgres.stop):
            if stop is not None:
                with contextlib.suppress(Exception):
                    stop()
        log = self.workdir / "server.log"
        if self.keep_log is not None and log.exists():
            with contextlib.suppress(OSError):
                shutil.copyfile(log, self.keep_log)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class HttpConnection:
    """A lean HTTP/1.1 keep-alive client on asyncio streams, one request at a time: httpx
    costs milliseconds of CPU per request on the same 2 cores as the servers."""

    IDLE_S = 4.0  # hypercorn closes keep-alive connections idle for 5 s

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: Any = None
        self.writer: Any = None
        self.used = 0.0

    async def post(self, path: str, body: bytes, content_type: str = "application/json",
                   headers: dict[str, str] | None = None,
                   timeout_s: float = 30) -> tuple[int, bytes]:
        import asyncio

        try:
            return await asyncio.wait_for(self._post(path, body, content_type, headers or {}),
                                          timeout_s)
        except BaseException:
            await self.close()  # a half-read answer must not be read as the next one
            raise

    async def _post(self, path: str, body: bytes, content_type: str,
                    headers: dict[str, str]) -> tuple[int, bytes]:
        import asyncio

        if self.writer is not None and time.monotonic() - self.used > self.IDLE_S:
            await self.close()  # the server may be closing it right now: don't race it
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{extra}"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode("utf-8") + body)
        status_line, _, rest = (await self.reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length, close = 0, False
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        payload = await self.reader.readexactly(length)
        self.used = time.monotonic()
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None
