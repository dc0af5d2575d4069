"""Operations commands: `gridbot backup`, `gridbot restore`, `gridbot doctor`."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.cli_common import ConfigOpt, config_or_exit, console, err

cli = typer.Typer()  # merged into gridbot's top level (no name of its own)
MARKS = {"ok": "[green]✓[/green]", "warn": "[yellow]![/yellow]", "fail": "[red]✗[/red]"}


@cli.command()
def backup(
    out: Annotated[Path, typer.Option("--out", help="archive to write (.tar.gz)")],
    config: ConfigOpt = None,
) -> None:
    """Write the database and the media folder to one portable archive."""
    from bot.backup import BackupError
    from bot.backup import backup as run_backup

    cfg = config_or_exit(config)
    try:
        manifest = asyncio.run(run_backup(cfg, out))
    except BackupError as exc:
        err.print(f"[red]备份失败 / backup failed:[/red] {exc}")
        raise typer.Exit(1) from None
    rows = sum(t["rows"] for t in manifest.tables.values())
    console.print(f"已备份 / backed up: {out} — revision {manifest.revision}, "
                  f"{len(manifest.tables)} tables, {rows} rows, {len(manifest.media)} media files")


@cli.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="a gridbot backup archive")],
    force: Annotated[bool, typer.Option("--force",
                                        help="replace the data already in the database")] = False,
    config: ConfigOpt = None,
) -> None:
    """Load a backup into the configured database and media folder, then migrate to head."""
    from bot.backup import BackupError
    from bot.backup import restore as run_restore

    cfg = config_or_exit(config)
    try:
        manifest = asyncio.run(run_restore(cfg, archive, force=force))
    except BackupError as exc:
        err.print(f"[red]恢复失败 / restore failed:[/red] {exc}")
        raise typer.Exit(1) from None
    rows = sum(t["rows"] for t in manifest.tables.values())
    console.print(f"已恢复 / restored: {archive} — {rows} rows from revision "
                  f"{manifest.revision}, {len(manifest.media)} media files")


@cli.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Check the deployment: config, database, Redis, channels, model, media, exposure."""
    from bot.doctor import as_dicts, run_checks

    checks = asyncio.run(run_checks(config))
    failed = [c for c in checks if not c.ok]
    if as_json:
        sys.stdout.write(json.dumps({"ok": not failed, "checks": as_dicts(checks)},
                                    ensure_ascii=False, indent=2) + "\n")
    else:
        for check in checks:
            console.print(f"{MARKS[check.status]} {check.name}: {check.zh}\n    {check.en}",
                          highlight=False)
        console.print(f"\n{len(failed)} 项有问题 / {len(failed)} problem(s)" if failed
                      else "\n一切正常 / all good")
    if failed:
        raise typer.Exit(1)
