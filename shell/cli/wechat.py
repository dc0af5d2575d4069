"""`gridbot wechat menu` and `gridbot qrcode`: one-off calls to the WeChat API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from shell.cli.common import ConfigOpt, config_or_exit

cli = typer.Typer()  # merged into gridbot's top level (no name of its own)
wechat_app = typer.Typer(help="WeChat official account.", no_args_is_help=True)
cli.add_typer(wechat_app, name="wechat")



@wechat_app.command("menu")
def menu(config: ConfigOpt = None) -> None:
    """Create the account's menu: 我要上报 / 我的案件 / 使用说明."""
    from adapters.wechat import create_menu

    cfg = config_or_exit(config)
    if not cfg.wechat.app_id or not cfg.wechat.app_secret:
        typer.echo("wechat.app_id and wechat.app_secret are needed", err=True)
        raise typer.Exit(2)
    asyncio.run(create_menu(cfg))
    typer.echo("menu created")


@cli.command()
def qrcode(
    community: Annotated[str, typer.Option(help="community code: reports start there")],
    out: Annotated[Path, typer.Option(help="PNG file to write")],
    config: ConfigOpt = None,
) -> None:
    """Make a mini-program code whose scene names a community (scan to report there)."""
    from adapters.wechat_mp import make_qrcode

    cfg = config_or_exit(config)
    try:
        data = asyncio.run(make_qrcode(cfg, community))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    out.write_bytes(data)
    typer.echo(f"{out} ({len(data)} bytes)")


@wechat_app.command("worker-code")
def worker_code(
    worker: Annotated[int, typer.Argument(help="the worker id `gridbot workers add` printed")],
    config: ConfigOpt = None,
) -> None:
    """Print a one-time code (24 h) that makes a mini-program user this worker: they type it
    in the mini-program's 我的 → 工作人员绑定, then report patrols and close on the spot there."""
    from datetime import UTC, datetime

    from bot.services import build_services
    from bot.worker_codes import WorkerCodeError, new_worker_code

    cfg = config_or_exit(config)

    async def make() -> str:
        services = await build_services(cfg)
        try:
            return await new_worker_code(services.db, worker, datetime.now(UTC))
        finally:
            await services.close()

    try:
        code = asyncio.run(make())
    except WorkerCodeError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(code)
