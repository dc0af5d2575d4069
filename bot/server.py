"""Run the app under hypercorn: one process in-line, several through hypercorn's runner."""

from __future__ import annotations

import asyncio
import os

from hypercorn.asyncio import serve
from hypercorn.config import Config as HyperConfig

from bot.app import check_exposure, create_app
from bot.config import Config
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
        if hyper.worker_class == "uvloop":
            import uvloop

            uvloop.run(serve(create_app(config), hyper))
        else:
            asyncio.run(serve(create_app(config), hyper))
        return
    from hypercorn.run import run

    # Workers import bot.asgi, which reads the same file and environment.
    if config.source_file is not None:
        os.environ["GRIDBOT_CONFIG"] = str(config.source_file)
    hyper.application_path = "bot.asgi:app"
    run(hyper)


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # optional: the stock loop works, only slower
        return False
    return True
