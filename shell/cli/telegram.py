"""`gridbot telegram …`: register the webhook, poll locally, make group bind codes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from bot.config import Config
from shell.cli.common import ConfigOpt, config_or_exit, err

telegram_app = typer.Typer(help="The Telegram channel.", no_args_is_help=True)



def _need_token(cfg: Config) -> None:
    if not cfg.telegram.token:
        err.print("[red]telegram.token is empty: set GRIDBOT_TELEGRAM_TOKEN[/red]")
        raise typer.Exit(2)


async def _with_services(cfg: Config, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    from bot.services import build_services

    services = await build_services(cfg)
    try:
        return await fn(services)
    finally:
        await services.close()


@telegram_app.command("set-webhook")
def set_webhook(url: str, config: ConfigOpt = None) -> None:
    """Tell Telegram to POST updates to URL (…/telegram), with the configured secret."""
    from telegram import Bot, Update

    cfg = config_or_exit(config)
    _need_token(cfg)
    if not cfg.telegram.secret_token:
        err.print("[red]telegram.secret_token is empty: set GRIDBOT_TELEGRAM_SECRET_TOKEN "
                  "(1–256 characters A-Z a-z 0-9 _ -)[/red]")
        raise typer.Exit(2)
    if not url.startswith("https://"):
        err.print("[red]Telegram only calls https:// webhooks[/red]")
        raise typer.Exit(2)

    async def run() -> bool:
        bot = Bot(cfg.telegram.token, base_url=cfg.telegram.base_url,
                  base_file_url=cfg.telegram.base_file_url)
        async with bot:
            # Each update is worked before its webhook call is answered: let Telegram keep
            # as many calls open at once as it allows (its default is 40).
            return await bot.set_webhook(url, secret_token=cfg.telegram.secret_token,
                                         allowed_updates=Update.ALL_TYPES,
                                         max_connections=100)

    if not asyncio.run(run()):
        err.print("[red]Telegram refused the webhook[/red]")
        raise typer.Exit(1)
    err.print(f"webhook set: {url}")


@telegram_app.command()
def poll(config: ConfigOpt = None) -> None:
    """Long polling for local use: the same handlers, plus the outbox and timers, until
    Ctrl-C. Removes any webhook first."""
    from adapters import telegram

    cfg = config_or_exit(config)
    _need_token(cfg)

    async def run(services: Any) -> None:
        channel = await telegram.start(services)
        assert channel is not None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        err.print(f"polling as @{channel.application.bot.username}; Ctrl-C stops")
        try:
            await asyncio.gather(telegram.poll(channel, stop),
                                 services.outbox.run_forever(stop),
                                 services.timers.run_forever(stop))
        finally:
            await telegram.stop(services)

    asyncio.run(_with_services(cfg, run))


@telegram_app.command("bind-code")
def bind_code(target: Annotated[str, typer.Argument(
        help="a grid code, street:CODE or department:NAME")],
        config: ConfigOpt = None) -> None:
    """Print a one-time code; `/bind CODE` in a Telegram group binds it to TARGET: a grid's
    team chat, or a street's or department's chat (督办 and escalations reach it)."""
    from bot.teams import BIND_CODE_TTL_S, TeamsError

    cfg = config_or_exit(config)  # (the code is kept in the database the server uses)

    async def run(services: Any) -> str:
        return await services.teams.new_bind_code(target)

    try:
        code = asyncio.run(_with_services(cfg, run))
    except TeamsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    typer.echo(code)
    err.print(f"in the team's Telegram group send: /bind {code}  "
              f"(valid once, for {BIND_CODE_TTL_S // 3600} h)")
