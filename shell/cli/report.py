"""`gridbot report --month 2026-11 --out report.pdf|report.html`: the monthly report."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from bot.config import Config
from bot.texts import t
from shell.cli.common import ConfigOpt, config_or_exit, console, err

cli = typer.Typer()


async def _write(cfg: Config, month: str, out: Path) -> None:
    from bot.cases import utcnow
    from bot.grid_store import load_areas
    from bot.grids import GridMap, load_geojson
    from bot.storage import Database, upgrade
    from shell.reports.monthly import build_report, write_report

    db = Database(cfg.database_url)
    try:
        await upgrade(db.url)
        # The grids as the server uses them: imported ones, else the configured file.
        areas = await load_areas(db) or load_geojson(cfg.path(cfg.grids.file))
        report = await build_report(db, GridMap(areas), month, ZoneInfo(cfg.cases.timezone),
                                    utcnow(), cfg.appraisal)
    finally:
        await db.close()
    # Drawing is CPU work with no database: done after the connection is closed.
    await asyncio.to_thread(write_report, report, out)


@cli.command("report")
def report(
    month: Annotated[str, typer.Option(help="the month, YYYY-MM (local time of cases.timezone)")],
    out: Annotated[Path, typer.Option(help="FILE.html (self-contained) or FILE.pdf")],
    config: ConfigOpt = None,
) -> None:
    """Write the monthly report: figures, tables and charts of the month, in Chinese."""
    from bot.dashboard import PeriodError
    from shell.reports.monthly import cjk_font

    cfg = config_or_exit(config)
    if out.suffix.lower() not in (".html", ".htm", ".pdf"):
        err.print(f"[red]{t('dashboard.report.bad_out', path=out)}[/red]")
        raise typer.Exit(2)
    if not out.parent.is_dir():
        err.print(f"[red]{out.parent}: no such folder[/red]")
        raise typer.Exit(2)
    if cjk_font() is None:
        err.print(f"[yellow]{t('dashboard.report.no_cjk_font')}[/yellow]")
    try:
        asyncio.run(_write(cfg, month, out))
    except PeriodError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(t("dashboard.report.written", path=out))
