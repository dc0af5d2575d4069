"""Run the app under hypercorn: one process in-line, several through hypercorn's runner."""

from __future__ import annotations

import asyncio
import os
import signal
from multiprocessing import get_context
from multiprocessing.connection import wait

from hypercorn.asyncio import serve
from hypercorn.config import Config as HyperConfig

from bot.config import Config, check_exposure
from bot.storage import upgrade_sync


def run_server(config: Config, host: str | None, port: int | None, workers: int | None) -> None:
    if workers is not None:
        config.server.workers = workers
    host = host or config.server.host
    port = port or config.server.port
    check_exposure(config, host)
    upgrade_sync(config.database_url)  # once, before any worker starts
    hyper = HyperConfig()
    hyper.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    hyper.accesslog = None
    hyper.workers = config.server.workers
    # uvloop: the event loop in C. Each request makes several socket round trips (client,
    # PostgreSQL, Redis), and the stock loop's Python overhead per I/O event showed up as a
    # large share of a filing's CPU (benchmarks/RESULTS.md, city_day).
    hyper.worker_class = "uvloop" if _has_uvloop() else "asyncio"
    if config.server.workers == 1:
        # Imported here: a multi-worker parent only supervises, and the app's imports
        # (scikit-learn, jieba, every adapter: ~3 s of CPU) are the workers' own.
        from shell.app import create_app

        if hyper.worker_class == "uvloop":
            import uvloop

            uvloop.run(serve(create_app(config), hyper))
        else:
            asyncio.run(serve(create_app(config), hyper))
        return
    # Workers import shell.asgi, which reads the same file and environment.
    if config.source_file is not None:
        os.environ["GRIDBOT_CONFIG"] = str(config.source_file)
    hyper.application_path = "shell.asgi:app"
    raise SystemExit(run_workers(hyper))


def run_workers(hyper: HyperConfig) -> int:
    """hypercorn's multi-process runner, except that each worker binds a socket of its own
    with SO_REUSEPORT once its app has started. hypercorn binds one socket and shares it:
    the first worker to wake then accepts a whole burst of new connections (city_day saw 9
    of its 10 keep-alive connections on one worker, which set the rate while the other
    idled). With one socket each, the kernel spreads connections over the workers by a hash
    of their addresses. The first worker to exit stops the others, as in hypercorn."""
    from hypercorn.asyncio.run import asyncio_worker, uvloop_worker

    worker = uvloop_worker if hyper.worker_class == "uvloop" else asyncio_worker
    context = get_context("spawn")
    shutdown = context.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited: the parent decides when to stop
    processes = [context.Process(target=worker,
                                 kwargs={"config": hyper, "shutdown_event": shutdown})
                 for _ in range(hyper.workers)]
    for process in processes:
        process.start()
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # SIGHUP: no orphaned workers on hang-up
        signal.signal(getattr(signal, name), lambda *_: shutdown.set())
    while not shutdown.is_set() and not wait([p.sentinel for p in processes], timeout=0.5):
        pass
    shutdown.set()
    for process in processes:
        process.join(timeout=hyper.graceful_timeout + 5)
        if process.exitcode is None:
            process.kill()
            process.join()
    return max((abs(p.exitcode or 0) for p in processes), default=0)


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # optional: the stock loop works, only slower
        return False
    return True
