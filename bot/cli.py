"""The `gridbot` command."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bot.config import Config, ConfigError, load_config

app = typer.Typer(help="gridbot: grid-based city management bot (网格化城市管理)",
                  no_args_is_help=True, add_completion=False)
cases_app = typer.Typer(help="Read cases from the database.", no_args_is_help=True)
grids_app = typer.Typer(help="Grid data.", no_args_is_help=True)
model_app = typer.Typer(help="Model versions.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(cases_app, name="cases")
app.add_typer(grids_app, name="grids")
app.add_typer(model_app, name="model")
app.add_typer(db_app, name="db")
console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="config.toml to use")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _config(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        err.print(f"[red]配置错误 / config error:[/red] {exc}")
        raise typer.Exit(2) from None


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    workers: Annotated[int | None, typer.Option(help="server processes")] = None,
    config: ConfigOpt = None,
) -> None:
    """Run the bot's web server (Quart under hypercorn)."""
    from bot.server import run_server

    cfg = _config(config)
    try:
        run_server(cfg, host, port, workers)
    except ConfigError as exc:
        err.print(f"[red]拒绝启动 / refusing to start:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def demo(config: ConfigOpt = None) -> None:
    """Train the default model if it is missing, then serve on embedded defaults."""
    from bot.server import run_server
    from nlp.model_store import ModelStore

    cfg = _config(config)
    if ModelStore(cfg.path(cfg.nlp.model_dir)).current() is None:
        err.print("首次运行：正在用种子语料训练分类模型……")
        _train_catalogue(cfg)
    url = f"http://{cfg.server.host}:{cfg.server.port}"
    err.print(f"\ngridbot 已启动：{url}\n在另一个终端运行：  .venv/bin/gridbot chat\n"
              f"或：curl -s {url}/api/v1/messages -H 'Content-Type: application/json' "
              "-d '{\"user\":\"u1\",\"text\":\"小区门口的井盖不见了\"}'\n")
    run_server(cfg, None, None, None)


@app.command()
def chat(
    url: Annotated[str, typer.Option(help="gridbot server")] = "http://127.0.0.1:8080",
    user: Annotated[str | None, typer.Option(help="your user id on the HTTP channel")] = None,
) -> None:
    """Talk to a running gridbot from the terminal (`/loc lat,lon` sends a location)."""
    from bot.chat_client import run_chat

    user = user or f"cli-{getpass.getuser()}"
    raise typer.Exit(run_chat(url, user, os.environ.get("GRIDBOT_API_KEY", "")))


def _train_catalogue(cfg: Config) -> str:
    from bot.catalogue import load_catalogue
    from nlp.model_store import ModelStore
    from nlp.places import Gazetteer, load_gazetteer
    from training.catalogue_model import train_catalogue_model

    catalogue = load_catalogue(cfg.path(cfg.catalogue.file))
    gazetteer = Gazetteer(load_gazetteer(cfg.path(cfg.grids.gazetteer)))
    with console.status("training the catalogue model…"):
        model, report = train_catalogue_model(
            cfg.path(cfg.nlp.seed_corpus), catalogue, gazetteer.words()
        )
    store = ModelStore(cfg.path(cfg.nlp.model_dir))
    directory = store.new_version_dir("catalogue")
    model.save(directory)
    store.use(directory.name)
    err.print(
        f"model {directory.name}: validation top-1 {report.top1_accuracy:.3f}, "
        f"top-3 {report.top3_accuracy:.3f}, big class {report.big_class_accuracy:.3f}; "
        f"threshold {report.threshold:.2f} (sure on {report.sure_share:.0%}, "
        f"right {report.sure_precision:.0%} of those)"
    )
    return directory.name


@app.command()
def train(config: ConfigOpt = None) -> None:
    """Train the catalogue model from the seed corpus and make it current."""
    _train_catalogue(_config(config))


@model_app.command("list")
def model_list(config: ConfigOpt = None) -> None:
    """Model versions; * marks the one in use."""
    from nlp.model_store import ModelStore

    cfg = _config(config)
    store = ModelStore(cfg.path(cfg.nlp.model_dir))
    current = store.current()
    for version in store.versions():
        console.print(f"{'*' if version == current else ' '} {version}")


@model_app.command("use")
def model_use(version: str, config: ConfigOpt = None) -> None:
    """Switch running servers to VERSION (they notice within seconds)."""
    from nlp.model_store import ModelStore

    cfg = _config(config)
    try:
        ModelStore(cfg.path(cfg.nlp.model_dir)).use(version)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


async def _with_services(cfg: Config, fn):
    from bot.services import build_services

    services = await build_services(cfg)
    try:
        return await fn(services)
    finally:
        await services.close()


@cases_app.command("list")
def cases_list(
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 50,
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Cases, newest first."""
    cfg = _config(config)

    async def run(s):
        return [s.cases.public_view(c, with_timeline=False)
                for c in await s.cases.list(limit, status)]

    views = asyncio.run(_with_services(cfg, run))
    if as_json:
        _print_json(views)
        return
    table = Table("编号", "状态", "类别", "网格", "时限")
    for v in views:
        table.add_row(v["number"], v["status_label"], v["item"]["label"], v["grid"]["name"],
                      (v["handling_due"] or "")[:16])
    console.print(table)


@cases_app.command("show")
def cases_show(number: str, as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """One case with its timeline."""
    cfg = _config(config)

    async def run(s):
        case = await s.cases.get(number)
        return s.cases.public_view(case) if case else None

    view = asyncio.run(_with_services(cfg, run))
    if view is None:
        err.print(f"no case {number}")
        raise typer.Exit(1)
    if as_json:
        _print_json(view)
        return
    console.print(f"[bold]{view['number']}[/bold] {view['item']['label']} — {view['status_label']}")
    console.print(f"{view['grid']['name']} · {view['address']} · {view['text']}")
    for e in view["timeline"]:
        console.print(f"  {e['at'][:16]}  {e['status_label']}  {e['note']}")


@grids_app.command("import")
def grids_import(file: Path, config: ConfigOpt = None) -> None:
    """Replace the grids in the database with a GeoJSON file (WGS-84)."""
    from bot.grid_store import replace_areas
    from bot.grids import GridsError, load_geojson
    from bot.storage import Database, upgrade

    cfg = _config(config)
    try:
        areas = load_geojson(file)
    except GridsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None

    async def run() -> None:
        db = Database(cfg.database_url)
        await upgrade(db.url)
        await replace_areas(db, areas)
        await db.close()

    asyncio.run(run())
    levels: dict[str, int] = {}
    for a in areas:
        levels[a.level] = levels.get(a.level, 0) + 1
    console.print(f"imported {len(areas)} areas: {levels}. Restart servers to use them.")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Apply database migrations."""
    from bot.storage import upgrade_sync

    cfg = _config(config)
    upgrade_sync(cfg.database_url)
    console.print("database schema is up to date")
