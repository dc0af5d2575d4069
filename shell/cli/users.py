"""`gridbot users …`: console accounts. Passwords are read at the prompt or from stdin, never
from the command line (it would land in the shell history and the process list)."""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import Annotated

import typer
from rich.table import Table

from bot.config import Config
from shell.cli.common import ConfigOpt, config_or_exit, console, err

users_app = typer.Typer(help="Console accounts (staff).", no_args_is_help=True)


async def _db_and_grids(cfg: Config):
    from bot.grid_store import load_areas
    from bot.grids import GridMap, load_geojson
    from bot.storage import Database, upgrade

    db = Database(cfg.database_url)
    await upgrade(db.url)
    areas = await load_areas(db) or load_geojson(cfg.path(cfg.grids.file))
    return db, GridMap(areas)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("密码 / password: ")
    if first != getpass.getpass("再输一次 / again: "):
        err.print("[red]两次输入的密码不一致 / the passwords differ[/red]")
        raise typer.Exit(2)
    return first


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[str, typer.Option(help="operator, dispatcher, supervisor, department "
                                           "or grid_leader")],
    scope: Annotated[str, typer.Option(help="department:NAME for department users; grid:CODE, "
                                            "street:CODE or district:CODE for grid leaders")] = "",
    display_name: Annotated[str, typer.Option(help="name shown in the console")] = "",
    password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                 help="read the password from stdin")] = False,
    config: ConfigOpt = None,
) -> None:
    """Create a console account."""
    from bot.staff import StaffError, add_user, check_scope, use_password_cost

    cfg = config_or_exit(config)
    use_password_cost(cfg.console)
    try:
        check_scope(role, scope)  # before asking for a password that would be thrown away
    except StaffError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    password = _read_password(password_stdin)

    async def run():
        db, grids = await _db_and_grids(cfg)
        try:
            return await add_user(db, name, password, role, scope, display_name, grids)
        finally:
            await db.close()

    try:
        user = asyncio.run(run())
    except StaffError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"user {user.username} ({user.role}{', ' + user.scope if user.scope else ''})"
                  " created")


@users_app.command("list")
def users_list(config: ConfigOpt = None) -> None:
    """Every console account (no password hashes)."""
    from bot.staff import list_users

    cfg = config_or_exit(config)

    async def run():
        db, _ = await _db_and_grids(cfg)
        try:
            return await list_users(db)
        finally:
            await db.close()

    table = Table("username", "name", "role", "scope", "active", "last login")
    for u in asyncio.run(run()):
        table.add_row(u.username, u.display_name, u.role, u.scope, "yes" if u.active else "no",
                      u.last_login_at.isoformat(timespec="minutes") if u.last_login_at else "-")
    console.print(table)


@users_app.command("disable")
def users_disable(name: str, config: ConfigOpt = None) -> None:
    """Stop an account logging in; its open sessions end at their next request."""
    from bot.staff import set_active

    cfg = config_or_exit(config)

    async def run() -> bool:
        db, _ = await _db_and_grids(cfg)
        try:
            return await set_active(db, name, False)
        finally:
            await db.close()

    if not asyncio.run(run()):
        err.print(f"[red]no user '{name}'[/red]")
        raise typer.Exit(1)
    console.print(f"user {name} disabled")
