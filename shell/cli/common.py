"""What every `gridbot` sub-command shares: the consoles, the --config option, loading it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bot.config import Config, ConfigError, load_config

console = Console(soft_wrap=True)  # long paths and messages stay on one line
err = Console(stderr=True, soft_wrap=True)
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="config.toml to use")]


def config_or_exit(path: Path | None) -> Config:
    """The config, or a message naming the bad key and exit status 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        err.print(f"[red]配置错误 / config error:[/red] {exc}")
        raise typer.Exit(2) from None
