"""`gridbot apikeys …`: keys for the HTTP API and Open311. The key is printed once, alone on
stdout (so `KEY=$(gridbot apikeys add web)` works); only its hash is kept. Each key has
scopes (`--scope`, repeatable): open311, chat, suggest, admin; open311 alone by default."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from bot.config import Config
from shell.cli.common import ConfigOpt, config_or_exit, console, err

apikeys_app = typer.Typer(help="API keys for /api/v1 and Open311.", no_args_is_help=True)
T = TypeVar("T")
ScopeOpt = Annotated[list[str] | None, typer.Option(
    "--scope", metavar="SCOPE",
    help="what the key may do; repeat for several: open311 (file through Open311), chat "
         "(/api/v1 chat and reports), suggest (/api/v1/suggest, stores training examples), "
         "admin (all). Default for a new key: open311 only.")]


def _with_db(cfg: Config, job: Callable[..., Awaitable[T]]) -> T:
    from bot.storage import Database, upgrade

    async def run() -> T:
        db = Database(cfg.database_url)
        try:
            await upgrade(db.url)
            return await job(db)
        finally:
            await db.close()

    return asyncio.run(run())


@apikeys_app.command("add")
def apikeys_add(name: str, scope: ScopeOpt = None, config: ConfigOpt = None) -> None:
    """Make a key named NAME and print it: it is shown this once and cannot be read back.
    Without --scope the key may only file through Open311."""
    from bot.apikeys import DEFAULT_SCOPES, ApiKeyError, check_scopes, create_key

    cfg = config_or_exit(config)
    try:
        scopes = check_scopes(scope) if scope else DEFAULT_SCOPES
        info, key = _with_db(cfg, lambda db: create_key(db, name, scopes=scopes))
    except ApiKeyError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    sys.stdout.write(key + "\n")
    err.print(f"key '{info.name}' ({info.prefix}…) created with scopes "
              f"{', '.join(info.scopes)}; it is shown only now — store it where the client "
              "keeps secrets")


@apikeys_app.command("set-scopes")
def apikeys_set_scopes(name: str, scope: ScopeOpt = None, config: ConfigOpt = None) -> None:
    """Replace the scopes of the key named NAME (at least one --scope)."""
    from bot.apikeys import ApiKeyError, check_scopes, set_scopes

    cfg = config_or_exit(config)
    try:
        scopes = check_scopes(scope or [])
        info = _with_db(cfg, lambda db: set_scopes(db, name, scopes))
    except ApiKeyError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if info is None:
        err.print(f"[red]no key named '{name}'[/red]")
        raise typer.Exit(1)
    console.print(f"key '{info.name}' now has scopes {', '.join(info.scopes)}")


@apikeys_app.command("list")
def apikeys_list(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Every key by name, prefix and scopes (never the key or its hash)."""
    from bot.apikeys import list_keys

    cfg = config_or_exit(config)
    keys = _with_db(cfg, list_keys)
    if as_json:
        sys.stdout.write(json.dumps([{
            "name": k.name, "prefix": k.prefix, "active": k.active, "scopes": list(k.scopes),
            "created_at": k.created_at.isoformat(),
            "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
        } for k in keys], ensure_ascii=False, indent=2) + "\n")
        return
    table = Table("name", "prefix", "scopes", "active", "created", "last used")
    for k in keys:
        table.add_row(k.name, k.prefix + "…", ",".join(k.scopes),
                      "yes" if k.active else "revoked",
                      k.created_at.isoformat(timespec="minutes"),
                      k.last_used_at.isoformat(timespec="minutes") if k.last_used_at else "-")
    console.print(table)


@apikeys_app.command("revoke")
def apikeys_revoke(name: str, config: ConfigOpt = None) -> None:
    """Stop the key named NAME at once (the row stays, for the record)."""
    from bot.apikeys import revoke_key

    cfg = config_or_exit(config)
    if not _with_db(cfg, lambda db: revoke_key(db, name)):
        err.print(f"[red]no key named '{name}'[/red]")
        raise typer.Exit(1)
    console.print(f"key '{name}' revoked")
