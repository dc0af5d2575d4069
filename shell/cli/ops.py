"""Operations commands: `gridbot backup`, `gridbot restore`, `gridbot doctor`,
`gridbot media sweep`."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from shell.cli.common import ConfigOpt, config_or_exit, console, err

cli = typer.Typer()  # merged into gridbot's top level (no name of its own)
media_app = typer.Typer(help="Stored photos (var/media).")
cli.add_typer(media_app, name="media")
MARKS = {"ok": "[green]✓[/green]", "warn": "[yellow]![/yellow]", "fail": "[red]✗[/red]"}


@cli.command()
def backup(
    out: Annotated[Path, typer.Option("--out", help="archive to write (.tar.gz)")],
    config: ConfigOpt = None,
) -> None:
    """Write the database and the media folder to one portable archive."""
    from shell.ops.backup import BackupError
    from shell.ops.backup import backup as run_backup

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
    from shell.ops.backup import BackupError
    from shell.ops.backup import restore as run_restore

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
    from shell.ops.doctor import as_dicts, run_checks

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


@media_app.command("sweep")
def media_sweep(
    dry_run: Annotated[bool, typer.Option("--dry-run",
                                          help="list the orphans, remove nothing")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="sweep even though no case refers to any photo")] = False,
    config: ConfigOpt = None,
) -> None:
    """Remove mini-program photos (var/media/mp) no case uses, once over an hour old."""
    from bot import kv
    from bot.media import MEDIA_DIR, MP_FOLDER, ORPHAN_AGE_S, any_referenced, sweep_orphans
    from bot.storage import Database

    cfg = config_or_exit(config)
    folder = cfg.path(MEDIA_DIR) / MP_FOLDER

    async def run() -> Any:
        db = Database(cfg.database_url)
        # Half-finished reports hold photos too; the embedded store lives in the server's
        # process, where the hour (or the dialog TTL, when longer) covers them.
        redis = kv.connect(cfg.redis.url) if cfg.redis.url else None
        try:
            # A database with no photo in any case is most likely not this folder's.
            trusted = force or await any_referenced(db)
            return trusted, await sweep_orphans(
                db, folder, redis=redis, dry_run=dry_run or not trusted,
                min_age_s=max(ORPHAN_AGE_S, cfg.redis.dialog_ttl_s))
        finally:
            if redis is not None:
                await redis.aclose()
            await db.close()

    try:
        trusted, report = asyncio.run(run())
    except Exception as exc:  # no database yet, or it is not reachable
        err.print(f"[red]清理失败 / sweep failed:[/red] {exc}")
        raise typer.Exit(1) from None
    for path in report.removed:
        console.print(f"  {path}", highlight=False)
    if not trusted and report.removed:
        err.print(f"[yellow]注意 / note:[/yellow] 数据库中没有任何案件引用小程序照片，请确认配置"
                  f"的数据库是否正确 / no case in {cfg.database_url.split('@')[-1]} refers to "
                  "any photo: is it the right database? (--force sweeps anyway)")
        if not dry_run:
            err.print("[red]未删除 / nothing removed[/red]")
            raise typer.Exit(1)
    verb = "将删除 / would remove" if dry_run else "已删除 / removed"
    console.print(f"{verb}: {len(report.removed)} orphan photo(s), "
                  f"{report.removed_bytes / 1_048_576:.1f} MB, of {report.examined} old "
                  f"enough in {folder}", highlight=False)
