"""The `gridbot` command."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from bot.config import Config, ConfigError
from shell.cli.apikeys import apikeys_app
from shell.cli.common import ConfigOpt, config_or_exit, console, err
from shell.cli.hotspots import cli as hotspots_cli
from shell.cli.ops import cli as ops_cli
from shell.cli.patrol import patrol_app
from shell.cli.report import cli as report_cli
from shell.cli.telegram import telegram_app
from shell.cli.users import users_app
from shell.cli.wechat import cli as wechat_cli
from shell.cli.wecom import wecom_app

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
app.add_typer(wechat_cli)  # gridbot wechat menu, gridbot qrcode
app.add_typer(report_cli)  # gridbot report --month 2026-11 --out FILE.pdf|html
app.add_typer(telegram_app, name="telegram")
app.add_typer(users_app, name="users")
app.add_typer(apikeys_app, name="apikeys")
app.add_typer(wecom_app, name="wecom")
app.add_typer(ops_cli)  # gridbot backup / restore / doctor
app.add_typer(hotspots_cli)  # gridbot hotspots --data FILE …
app.add_typer(patrol_app, name="patrol")  # gridbot patrol plan GRID --every workday …
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


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
    from shell.server import run_server

    cfg = config_or_exit(config)
    try:
        run_server(cfg, host, port, workers)
    except ConfigError as exc:
        err.print(f"[red]拒绝启动 / refusing to start:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def demo(config: ConfigOpt = None) -> None:
    """Train the default model if it is missing, then serve on embedded defaults."""
    from nlp.model_store import ModelStore
    from shell.server import run_server

    cfg = config_or_exit(config)
    if ModelStore(cfg.path(cfg.nlp.model_dir)).current() is None:
        err.print("首次运行：正在训练分类模型（种子语料 + 已标注的真实留言）……")
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
    from shell.chat_client import run_chat

    user = user or f"cli-{getpass.getuser()}"
    raise typer.Exit(run_chat(url, user, os.environ.get("GRIDBOT_API_KEY", "")))


def _train_catalogue(cfg: Config) -> str:
    """The default model, made current: the triage model (item model from real words +
    the seed corpus, scope model, topic router) when the labelled real messages' texts are
    found (config triage.real_data, env GRIDBOT_TRIAGE_REAL_DATA, ../shared/data/tipdm);
    else the seed-only model, with a warning."""
    from bot.catalogue import load_catalogue
    from nlp.model_store import ModelStore
    from nlp.places import Gazetteer, load_gazetteer
    from training.labels import (
        Labelled,
        find_real_data,
        read_dev_topics,
        read_labelled,
        split,
    )
    from training.triage_model import train_triage_model

    catalogue = load_catalogue(cfg.path(cfg.catalogue.file))
    gazetteer = Gazetteer(load_gazetteer(cfg.path(cfg.grids.gazetteer)))
    real = find_real_data(cfg.path(cfg.triage.real_data))
    rows: list[Labelled] = []
    train_part: list[Labelled] = []
    held: list[Labelled] = []
    dev: tuple[list[str], list[str]] = ([], [])
    if real is None:
        err.print("[yellow]警告 / warning: labelled real messages not found "
                  f"({cfg.path(cfg.triage.real_data)}/board_messages.csv; set triage.real_data "
                  "or GRIDBOT_TRIAGE_REAL_DATA): training the seed-only model — every text "
                  "is a catalogue matter (or an emergency), and real letters are classified "
                  "much worse[/yellow]")
    else:
        rows = read_labelled(real)
        train_part, held = split(rows)
        dev = read_dev_topics(real)
    label = (f"training the triage model on {len(train_part)} real messages + seed corpus…"
             if rows else "training the seed-only catalogue model…")
    with console.status(label) as status:
        model, report = train_triage_model(
            cfg.path(cfg.nlp.seed_corpus), catalogue, gazetteer.words(), train_part, dev,
            held, departments=cfg.triage.departments,
            progress=lambda m: status.update(f"{label} {m}"),
        )
    if real is not None:
        model.card["data_seen"]["real_data"] = str(real)
    store = ModelStore(cfg.path(cfg.nlp.model_dir))
    directory = store.new_version_dir("triage" if rows else "catalogue")
    model.save(directory)
    store.use(directory.name)
    if report.held_out:
        h = report.held_out
        err.print(
            f"model {directory.name}: held-out real messages ({h['n']}): top-1 {h['top1']:.3f}, "
            f"top-3 {h['top3']:.3f} of {h['n_catalogue']} catalogue matters; sure on "
            f"{h['sure_share']:.0%}, right {h['sure_precision']:.0%} of those; grid matters "
            f"kept {h['grid_keep']:.0%}, others sent on {h['nongrid_away']:.0%}"
        )
    else:
        seed = report.cv["item"]["seed_validation"]
        err.print(
            f"model {directory.name}: seed validation top-1 {seed['top1_accuracy']:.3f}, "
            f"top-3 {seed['top3_accuracy']:.3f}; threshold {seed['threshold']:.2f} (sure on "
            f"{seed['sure_share']:.0%}, right {seed['sure_precision']:.0%} of those)"
        )
    return directory.name


def _train_from_cases(cfg: Config) -> str:
    """Seed corpus + confirmed examples from the database → a new current version."""
    from bot.catalogue import load_catalogue
    from bot.storage import Database, upgrade
    from nlp.model_store import ModelStore
    from nlp.places import Gazetteer, load_gazetteer
    from training.from_cases import confirmed_examples, train_with_examples

    async def read() -> list[tuple[str, str]]:
        db = Database(cfg.database_url)
        try:
            await upgrade(db.url)
            return await confirmed_examples(db)
        finally:
            await db.close()

    examples = asyncio.run(read())
    catalogue = load_catalogue(cfg.path(cfg.catalogue.file))
    gazetteer = Gazetteer(load_gazetteer(cfg.path(cfg.grids.gazetteer)))
    with console.status(f"training on the seed corpus + {len(examples)} confirmed examples…"):
        model, report, used = train_with_examples(
            cfg.path(cfg.nlp.seed_corpus), catalogue, gazetteer.words(), examples
        )
    store = ModelStore(cfg.path(cfg.nlp.model_dir))
    directory = store.new_version_dir("cases")
    model.save(directory)
    store.use(directory.name)  # running servers swap to it within seconds (ModelHolder)
    err.print(
        f"model {directory.name}: {used} confirmed examples; validation top-1 "
        f"{report.top1_accuracy:.3f}, top-3 {report.top3_accuracy:.3f}; now current "
        "(`gridbot model use VERSION` rolls back)"
    )
    return directory.name


TextColOpt = Annotated[list[str] | None, typer.Option(
    "--text-col", help="text column; repeat to join several (title, detail …)")]
LabelColOpt = Annotated[str | None, typer.Option("--label-col", help="label column")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="labelled CSV, JSONL or XLSX")]


def _read_labelled(data: Path, text_col: list[str] | None,
                   label_col: str | None) -> tuple[list[str], list[str]]:
    from training.labelled_data import LabelledDataError, read_labelled

    if not text_col or not label_col:
        err.print("[red]--data needs --text-col (one or more) and --label-col[/red]")
        raise typer.Exit(2)
    try:
        return read_labelled(data, text_col, label_col)
    except LabelledDataError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _train_from_file(data: Path, text_col: list[str] | None, label_col: str | None,
                     out: Path | None, folds: int, c: float) -> None:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from training.message_model import TrainingError, train_message_model
    from training.report import write_confusion, write_report

    if out is None:
        err.print("[red]--data needs --out DIR (where the model and its report go)[/red]")
        raise typer.Exit(2)
    texts, labels = _read_labelled(data, text_col, label_col)
    err.print(f"{len(texts)} examples, {len(set(labels))} labels from {data}")
    steps = max(folds, 0) + 1
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("preparing", total=steps)

        done = 0

        def on_step(message: str) -> None:
            nonlocal done
            progress.update(task, description=message, completed=done)
            done += 1

        try:
            result = train_message_model(texts, labels, folds=folds, c=c, progress=on_step)
        except TrainingError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        progress.update(task, description="done", completed=steps)
    model = result.model
    model.card["data_file"] = data.name
    model.card["text_columns"] = list(text_col or [])
    model.card["label_column"] = label_col
    model.save(out)
    report: dict[str, Any] = {"model": "message_pipeline", "data_file": data.name,
                              "n_examples": len(texts), "cross_validation": result.cv}
    if result.cv_predicted:
        names = write_confusion(out, result.cv_truth, result.cv_predicted)
        # The PNG numbers its classes when no CJK font is installed: this is the key.
        report["confusion_matrix"] = {"csv": "confusion_matrix.csv",
                                      "png": "confusion_matrix.png",
                                      "from": "out-of-fold predictions", "classes": names}
    write_report(out, report)
    oof = result.cv.get("out_of_fold")
    if oof:
        table = Table("label", "precision", "recall", "F1", "n", title="cross-validated")
        for name, row in oof["per_class"].items():
            table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                          f"{row['f1']:.3f}", str(row["support"]))
        err.print(table)
        err.print(f"macro-F1 {oof['macro_f1']:.4f} (folds {result.cv['macro_f1_mean']:.4f} ± "
                  f"{result.cv['macro_f1_std']:.4f}), top-3 {oof['top3_accuracy']:.4f}")
    else:
        err.print("too few examples per label for cross-validation: no scores reported")
    err.print(f"model, card and report written to {out}")


@app.command()
def train(
    data: DataOpt = None,
    text_col: TextColOpt = None,
    label_col: LabelColOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="folder for model and report")] = None,
    from_cases: Annotated[bool, typer.Option(
        "--from-cases", help="retrain the catalogue model on confirmed examples + seed corpus"
    )] = False,
    folds: Annotated[int, typer.Option(help="cross-validation folds (0 = none)")] = 5,
    c: Annotated[float, typer.Option("--c", help="SVM regularisation C")] = 3.0,
    config: ConfigOpt = None,
) -> None:
    """Train a model. With no --data: the default model, made current — the triage model
    (seed corpus + the labelled real messages, when triage.real_data has them; else the
    seed-only model, with a warning).

    --data FILE … --out DIR: a message classifier from any labelled file, with a report.
    --from-cases: the catalogue model from the seed corpus plus confirmed examples."""
    if data is not None and from_cases:
        err.print("[red]give either --data or --from-cases, not both[/red]")
        raise typer.Exit(2)
    if data is not None:
        _train_from_file(data, text_col, label_col, out, folds, c)
    elif from_cases:
        _train_from_cases(config_or_exit(config))
    else:
        _train_catalogue(config_or_exit(config))


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", help="model folder (from `gridbot train`)")],
    data: Annotated[Path, typer.Option("--data", help="labelled CSV, JSONL or XLSX")],
    text_col: TextColOpt = None,
    label_col: LabelColOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a trained model on labelled raw texts: accuracy, F1, top-3, speed."""
    from nlp.classifier import TextClassifier
    from training.report import evaluate as evaluate_model

    texts, labels = _read_labelled(data, text_col, label_col)
    try:
        classifier = TextClassifier.load(model)
    except (FileNotFoundError, TypeError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    metrics = evaluate_model(classifier, texts, labels)
    if as_json:
        sys.stdout.write(json.dumps(metrics, ensure_ascii=False) + "\n")
        return
    table = Table("label", "precision", "recall", "F1", "n")
    for name, row in metrics["per_class"].items():
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                      f"{row['f1']:.3f}", str(row["support"]))
    console.print(table)
    console.print(f"n {metrics['n']}  accuracy {metrics['accuracy']:.4f}  macro-F1 "
                  f"{metrics['macro_f1']:.4f}  weighted-F1 {metrics['weighted_f1']:.4f}  "
                  f"top-3 {metrics['top3_accuracy']:.4f}  {metrics['msgs_per_s']} msgs/s")


@app.command()
def suggest(
    data: Annotated[Path, typer.Option("--data", help="CSV, JSONL or XLSX of texts")],
    text_col: TextColOpt = None,
    id_col: Annotated[str | None, typer.Option("--id-col", help="id column to echo")] = None,
    model: Annotated[Path | None, typer.Option(
        "--model", help="model folder (default: the current model of nlp.model_dir)")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Triage a backlog: one JSON line per row — scope, topic, department, urgent, sure and
    the suggested items (code, name, confidence), as POST /api/v1/suggest answers."""
    from bot.catalogue import load_catalogue
    from nlp.classifier import TextClassifier
    from nlp.model_store import ModelStore
    from nlp.triage import item_facts, triage
    from training.labelled_data import LabelledDataError, read_texts

    if not text_col:
        err.print("[red]--data needs --text-col (one or more)[/red]")
        raise typer.Exit(2)
    cfg = config_or_exit(config)
    try:
        rows = read_texts(data, text_col, id_col)
    except LabelledDataError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    directory = model or ModelStore(cfg.path(cfg.nlp.model_dir)).current_dir()
    if directory is None:
        err.print("[red]no trained model: run `gridbot train` first (or give --model)[/red]")
        raise typer.Exit(2)
    try:
        classifier = TextClassifier.load(directory)
    except (FileNotFoundError, TypeError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    classifier.max_chars = cfg.nlp.max_text_chars
    items = item_facts(load_catalogue(cfg.path(cfg.catalogue.file)))
    for number, (row_id, text) in enumerate(rows, start=1):
        answer: dict[str, Any] = {"row": number}
        if id_col:
            answer["id"] = row_id
        if text.strip():
            answer.update(triage(classifier, text, cfg.triage.departments, items).as_dict(items))
        else:
            answer["error"] = "no text"
        if as_json:
            sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        else:
            best = answer.get("suggestions") or [{}]
            console.print(f"{number}\t{answer.get('scope', '-')}\t{answer.get('topic') or ''}\t"
                          f"{answer.get('department') or ''}\t"
                          f"{'urgent' if answer.get('urgent') else ''}\t"
                          f"{best[0].get('code', '')} {best[0].get('name', '')}", markup=False)


@model_app.command("list")
def model_list(config: ConfigOpt = None) -> None:
    """Model versions; * marks the one in use."""
    from nlp.model_store import ModelStore

    cfg = config_or_exit(config)
    store = ModelStore(cfg.path(cfg.nlp.model_dir))
    current = store.current()
    for version in store.versions():
        console.print(f"{'*' if version == current else ' '} {version}")


@model_app.command("use")
def model_use(version: str, config: ConfigOpt = None) -> None:
    """Switch running servers to VERSION (they notice within seconds)."""
    from nlp.model_store import ModelStore

    cfg = config_or_exit(config)
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
    cfg = config_or_exit(config)

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
    cfg = config_or_exit(config)

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

    cfg = config_or_exit(config)
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

    cfg = config_or_exit(config)
    upgrade_sync(cfg.database_url)
    console.print("database schema is up to date")


def _day(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None).replace(tzinfo=UTC)
    except ValueError:
        err.print(f"[red]'{text}' is not a date like 2026-11-01[/red]")
        raise typer.Exit(2) from None


@app.command()
def stats(
    date_from: Annotated[str | None, typer.Option(
        "--from", help="first day, YYYY-MM-DD (UTC); with --to, instead of --month")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="day after the last, YYYY-MM-DD")]
    = None,
    month: Annotated[str | None, typer.Option(
        help="YYYY-MM in the city's time zone (default: this month)")] = None,
    by: Annotated[str | None, typer.Option(
        help="worker | grid | street | department: the appraisal (考核) table; "
             "item | level: the case figures per group")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Closure, on-time, on-the-spot, level split and satisfaction for cases filed in a period
    (a month by default); `--by worker|grid|street|department`: the appraisal (考核) — each
    part's figure and 0–100 score beside the total, best first (`--by worker` keeps each
    worker's patrols, km, coverage, finds and 即办)."""
    from bot.appraisal import UNITS, Appraisal
    from bot.periods import Period, PeriodError
    from bot.stats import GROUPINGS, case_stats
    from bot.storage import Database, upgrade

    cfg = config_or_exit(config)
    tz = ZoneInfo(cfg.cases.timezone)
    now = datetime.now(UTC)
    if (date_from is None) != (date_to is None):
        err.print("[red]give --from and --to together (or --month)[/red]")
        raise typer.Exit(2)
    if date_from is not None and month is not None:
        err.print("[red]give either --month or --from/--to, not both[/red]")
        raise typer.Exit(2)
    if date_from is not None and date_to is not None:
        start, end = _day(date_from), _day(date_to)
    else:
        try:
            period = Period.month(month or now.astimezone(tz).strftime("%Y-%m"), tz)
        except PeriodError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        start, end = period.start, period.end

    async def run() -> dict[str, Any]:
        db = Database(cfg.database_url)
        try:
            await upgrade(db.url)
            figures = await case_stats(db, start, end, by if by in GROUPINGS else None) \
                if by not in ("worker", "street") else {"from": start.isoformat(),
                                                        "to": end.isoformat(), "by": by}
            if by in UNITS:
                from bot.grid_store import load_areas
                from bot.grids import GridMap, load_geojson

                # The grids as the server uses them: imported ones, else the configured file.
                grids = GridMap(await load_areas(db) or load_geojson(cfg.path(cfg.grids.file)))
                report = await Appraisal(db, grids, start, end, now,
                                         cfg.appraisal).report(by)
                # `--by worker` kept its list under "workers"; the other units under "rows".
                figures.update(weights=report["weights"], rules=report["rules"])
                figures["workers" if by == "worker" else "rows"] = report["rows"]
            return figures
        finally:
            await db.close()

    try:
        figures = asyncio.run(run())
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        _print_json(figures)
        return
    if by in UNITS:
        # A wide table: never squeezed into an 80-column pipe (a wider terminal keeps its own).
        wide = Console(width=max(console.width, 400), soft_wrap=True,
                       color_system="auto" if console.color_system else None)
        wide.print(appraisal_table(figures["workers" if by == "worker" else "rows"], by))
        return
    for key, value in figures.items():
        if key != "groups":
            console.print(f"{key:>22}: {value}")


def appraisal_table(rows: list[dict[str, Any]], by: str) -> Table:
    """The appraisal as a rich table: rank, unit, total, each part's score (figure)."""
    from bot.config import APPRAISAL_PARTS
    from bot.texts import t

    def cell(part: dict[str, Any]) -> str:
        if part["score"] is None:
            return "–"
        return f"{part['score']:.0f} ({part['value']:g})"

    columns = [t("dashboard.appraisal.col.rank"), t(f"dashboard.appraisal.unit.{by}"),
               t("dashboard.appraisal.col.score"),
               *(t(f"dashboard.appraisal.part.{p}") for p in APPRAISAL_PARTS)]
    extra = ("scope", "patrols", "km", "coverage", "left_grid", "found_on_patrol",
             "on_the_spot") if by == "worker" else ("cases_filed",)
    table = Table(title=t("dashboard.appraisal.title"))
    for heading in (*columns, *(t(f"dashboard.appraisal.col.{k}") for k in extra)):
        table.add_column(heading, no_wrap=True)
    for row in rows:
        table.add_row(str(row["rank"]), row["name"],
                      "–" if row["score"] is None else f"{row['score']:.1f}",
                      *(cell(row["parts"][p]) for p in APPRAISAL_PARTS),
                      *(str(row[k]) for k in extra))
    return table


@app.command()
def simulate(
    grids: Annotated[int, typer.Option(help="grids in the synthetic city")] = 921,
    cases_per_day: Annotated[int, typer.Option(help="reports a day")] = 400,
    days: Annotated[int, typer.Option(help="simulated days of reports")] = 7,
    seed: Annotated[int, typer.Option(help="random seed")] = 1,
    patrol_share: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="share of problems grid workers find on patrol before a "
                               "citizen reports them (0–1)")] = 0.0,
    patrol_on_spot: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="share of the grid matters found on patrol solved on the spot "
                               "(即办)")] = 0.8,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Run a synthetic city through the real pipeline on a simulated clock; print the figures
    (with patrol: found by patrol, closed on the spot, hours to closure) beside the seeds'."""
    from shell.ops.simulation import Behaviour, run_simulation

    cfg = config_or_exit(config)
    behaviour = Behaviour(patrol_share=patrol_share, patrol_on_spot=patrol_on_spot)
    with console.status(f"simulating {days} days of {cases_per_day} reports on {grids} grids…"):
        figures = asyncio.run(run_simulation(cfg, grids, cases_per_day, days, seed, behaviour))
    if as_json:
        _print_json(figures)
        return
    for key, value in figures.items():
        if key != "versus_seeds":
            console.print(f"{key:>26}: {value}")
    table = Table("figure", "simulated", "seed", "source", title="simulated vs the seeds")
    for name, row in figures["versus_seeds"].items():
        simulated = "–" if row["simulated"] is None else f"{row['simulated']:.1%}"
        table.add_row(name, simulated, f"{row['seed']:.1%}", row["source"])
    console.print(table)


workers_app = typer.Typer(help="Grid workers and staff who act on cases.", no_args_is_help=True)
app.add_typer(workers_app, name="workers")


@workers_app.command("add")
def workers_add(
    name: str,
    role: Annotated[str, typer.Option(help="grid_worker, grid_leader, street_staff, "
                                           "department_staff, dispatcher or supervisor")],
    scope: Annotated[str, typer.Option(help="grid:CODE, street:CODE, district:CODE or "
                                            "department:NAME")],
    channel: Annotated[str, typer.Option(help="where they act: telegram, wecom …")],
    external_id: Annotated[str, typer.Option("--id", help="their user id on that channel")],
    config: ConfigOpt = None,
) -> None:
    """Register (or update) a worker; they can then press the buttons on their cases."""
    from bot.teams import TeamsError

    cfg = config_or_exit(config)

    async def run(s):
        return await s.teams.add_worker(name, role, scope, channel, external_id,
                                        datetime.now(UTC))

    try:
        worker = asyncio.run(_with_services(cfg, run))
    except TeamsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"worker {worker.id}: {worker.name} ({worker.role}, {worker.scope}) "
                  f"on {worker.channel}:{worker.external_id}")
