"""`gridbot wecom …`: bind a WeCom group robot to a grid, street or department."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from shell.cli.common import ConfigOpt, config_or_exit, err

wecom_app = typer.Typer(help="WeCom (企业微信) group robots.", no_args_is_help=True)


@wecom_app.command("bind")
def bind(target: Annotated[str, typer.Argument(
             help="a grid code, street:CODE or department:NAME")],
         robot_key: Annotated[str, typer.Argument(
             help="the group robot's key (the key=… of its webhook address)")],
         config: ConfigOpt = None) -> None:
    """Send TARGET's cards, 督办 and escalations to a WeCom group robot — no grid-file edit,
    no restart: the binding is in the database the server reads."""
    from bot.services import build_services
    from bot.teams import TeamsError

    cfg = config_or_exit(config)

    async def run() -> Any:
        services = await build_services(cfg)
        try:
            return await services.teams.bind_chat(target, "wecom", robot_key.strip(),
                                                  datetime.now(UTC))
        finally:
            await services.close()

    if not robot_key.strip() or len(robot_key) > 200:
        err.print("[red]the robot key is the key=… part of the robot's webhook address[/red]")
        raise typer.Exit(2)
    try:
        bound = asyncio.run(run())
    except TeamsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    typer.echo(f"bound wecom robot to {bound}")
