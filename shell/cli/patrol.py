"""`gridbot patrol …`: each grid's duty list (巡查计划) — how often it is patrolled and which
places (schools, markets, compounds, landmarks from the gazetteer) a patrol should pass."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from shell.cli.common import ConfigOpt, config_or_exit, console, err

patrol_app = typer.Typer(help="Patrols (巡查): duty lists per grid.", no_args_is_help=True)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("，", ",").replace("、", ",").split(",")
            if part.strip()]


@patrol_app.command("plan")
def plan(grid: Annotated[str, typer.Argument(help="the grid's code")],
         every: Annotated[str, typer.Option(
             help="workday (every working day) or week (once a working week)")] = "workday",
         kinds: Annotated[str, typer.Option(
             help="the grid's gazetteer places of these kinds: school,market,compound,"
                  "landmark")] = "",
         places: Annotated[str, typer.Option(
             help="places named in the gazetteer, comma-separated (祖庙,梁园)")] = "",
         off: Annotated[bool, typer.Option("--off", help="remove the grid's plan")] = False,
         config: ConfigOpt = None) -> None:
    """Set (or with --off remove) GRID's patrol plan. A grid with no patrol in a planned
    period, or whose patrols missed a planned place, gets a 督办 in its group chat once the
    period's working hours are over."""
    from bot.duty import DutyError
    from bot.services import build_services

    cfg = config_or_exit(config)

    async def run() -> Any:
        services = await build_services(cfg)
        try:
            if off:
                return await services.duty.remove(grid)
            chosen = services.duty.gazetteer_places(grid, _split(kinds), _split(places))
            return await services.duty.set_plan(grid, every, chosen)
        finally:
            await services.close()

    try:
        result = asyncio.run(run())
    except DutyError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if off:
        typer.echo(f"removed the patrol plan of {grid}" if result else f"{grid} had no plan")
        return
    names = "、".join(p["name"] for p in result.places) or "-"
    typer.echo(f"{grid}: every {result.every}, {len(result.places)} places: {names}")


@patrol_app.command("plans")
def plans(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
          config: ConfigOpt = None) -> None:
    """Every grid's patrol plan."""
    from bot.services import build_services

    cfg = config_or_exit(config)

    async def run() -> list[dict[str, Any]]:
        services = await build_services(cfg)
        try:
            rows = []
            for p in await services.duty.plans():
                grid = services.grids.get(p.grid_code)
                rows.append({"grid": p.grid_code, "name": grid.name if grid else "",
                             "every": p.every, "places": [x["name"] for x in p.places]})
            return rows
        finally:
            await services.close()

    rows = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("grid", "name", "every", "places")
    for row in rows:
        table.add_row(row["grid"], row["name"], row["every"], "、".join(row["places"]))
    console.print(table)
