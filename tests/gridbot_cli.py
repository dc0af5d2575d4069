"""`gridbot …` run in this process (typer's CliRunner) instead of as a subprocess.

A subprocess pays the interpreter start and every import (scikit-learn, SQLAlchemy, jieba:
1–3 s a command on this machine, more under load) for what is a function call. Tests whose
point is the command's behaviour — its exit codes, what it prints, what it writes — use
`gridbot()`: it answers like `subprocess.run(..., capture_output=True, text=True)`
(`returncode`, `stdout`, `stderr`), and with `env` given it is the whole environment the
command sees, as `subprocess.run(env=...)`. Where the process boundary is the point (the
installed entry point, `gridbot serve` and its workers, signals), tests still start a real
process (tests/test_http_api.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import traceback
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from typer.testing import CliRunner

from bot.config import PROJECT_ROOT


@contextlib.contextmanager
def _plain_consoles() -> Iterator[None]:
    """The CLI's rich consoles chose their colours when imported (a terminal under
    `pytest -s`); a captured command prints plain text, as into a pipe."""
    from shell.cli import common

    saved = [(c, c._color_system) for c in (common.console, common.err)]
    try:
        for c, _ in saved:
            c._color_system = None
        yield
    finally:
        for c, system in saved:
            c._color_system = system


def gridbot(*args: str, env: Mapping[str, str] | None = None, input: str | None = None,
            cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    """Run `gridbot ARGS` in-process; an uncaught exception ends with status 1 and its
    traceback in stderr (where the real command would print it). Called from an async test,
    the command runs in a thread of its own (its asyncio.run needs a thread without a running
    loop) while the test's loop waits, as it waited for a subprocess."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _invoke(args, env, input, cwd)
    with ThreadPoolExecutor(1, thread_name_prefix="gridbot-cli") as pool:
        return pool.submit(_invoke, args, env, input, cwd).result()


def _invoke(args: tuple[str, ...], env: Mapping[str, str] | None, input: str | None,
            cwd: Path) -> subprocess.CompletedProcess[str]:
    from shell.cli import app

    overrides: dict[str, str | None] = {}
    if env is not None:  # the whole environment: unset what it leaves out
        overrides = {name: None for name in os.environ if name not in env}
        overrides.update(env)
    with contextlib.chdir(cwd), _plain_consoles():
        result = CliRunner().invoke(app, list(args), input=input, env=overrides)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["gridbot", *args], result.exit_code, result.stdout,
                                       stderr)
