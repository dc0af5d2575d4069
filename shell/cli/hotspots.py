"""`gridbot hotspots`: hot spots (热点) in any message file — one place, one problem, many
messages in a time window — hottest first."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shell.cli.common import console, err

cli = typer.Typer()

_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
                 "%Y/%m/%d", "%Y-%m-%d", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日")


def parse_time(value: Any) -> datetime | None:
    """A row's time: a datetime (XLSX), ISO 8601, or the usual Chinese spreadsheet forms;
    naive (the file's own clock), None when unreadable."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        pass
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _number(value: Any) -> int:
    try:
        return max(int(float(str(value).strip() or 0)), 0)
    except ValueError:
        return 0


@cli.command()
def hotspots(
    data: Annotated[Path, typer.Option("--data", help="CSV, JSONL or XLSX of messages")],
    text_col: Annotated[list[str], typer.Option(
        "--text-col", help="text column; repeat to join several (title, detail …)")],
    time_col: Annotated[str, typer.Option("--time-col", help="time column")],
    support_col: Annotated[list[str] | None, typer.Option(
        "--support-col", help="support column (likes, follow-ups); repeat to add several")] = None,
    id_col: Annotated[str | None, typer.Option(
        "--id-col", help="id column (members are given by it; default row numbers)")] = None,
    reporter_col: Annotated[str | None, typer.Option(
        "--reporter-col", help="reporter column (distinct reporters enter the heat)")] = None,
    top: Annotated[int, typer.Option("--top", help="how many hot spots")] = 10,
    window_days: Annotated[float, typer.Option(
        "--window-days", help="a hot spot ends after this many days without a message")] = 60.0,
    min_messages: Annotated[int, typer.Option("--min-messages", help="smallest hot spot")] = 3,
    model: Annotated[Path | None, typer.Option(
        "--model", help="model folder: its catalogue item joins the text similarity")] = None,
    gazetteer: Annotated[Path | None, typer.Option(
        "--gazetteer", help="gazetteer CSV whose names count as places")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON line per hot spot")] = False,
) -> None:
    """Hot spots in a message file: messages grouped by place and problem in a sliding time
    window, ranked by a heat index whose parts are shown."""
    from nlp.hotspots import HotMessage, HotspotSettings, find_hotspots
    from training.labelled_data import LabelledDataError, read_columns

    started = time.perf_counter()
    support_cols = list(support_col or [])
    columns = [*text_col, time_col, *support_cols, *([id_col] if id_col else []),
               *([reporter_col] if reporter_col else [])]
    try:
        rows = read_columns(data, list(dict.fromkeys(columns)))
    except LabelledDataError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    messages: list[HotMessage] = []
    no_time = 0
    for number, row in enumerate(rows, start=1):
        text = "\n".join(str(row[c]).strip() for c in text_col if row[c] not in (None, ""))
        when = parse_time(row[time_col])
        if not text.strip():
            continue
        if when is None:
            no_time += 1
            continue
        reporter = str(row[reporter_col]).strip() if reporter_col and row[reporter_col] else None
        messages.append(HotMessage(
            id=str(row[id_col]).strip() if id_col else str(number), text=text, time=when,
            support=sum(_number(row[c]) for c in support_cols), reporter=reporter or None,
        ))
    if no_time:
        err.print(f"[yellow]{no_time} rows without a readable time in '{time_col}': "
                  "skipped[/yellow]")
    if not messages:
        err.print("[red]no rows with both text and time[/red]")
        raise typer.Exit(2)
    classify = None
    if model is not None:
        from nlp.classifier import TextClassifier

        try:
            classifier = TextClassifier.load(model)
        except (FileNotFoundError, TypeError) as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None

        def classify(texts: list[str]) -> list[str | None]:
            return [s[0].code if s else None for s in classifier.rank_many(texts, k=1)]
    places = None
    if gazetteer is not None:
        from nlp.places import Gazetteer, GazetteerError, load_gazetteer

        try:
            places = Gazetteer(load_gazetteer(gazetteer))
        except GazetteerError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    settings = HotspotSettings(window_days=window_days, min_messages=min_messages)
    spots = find_hotspots(messages, settings, gazetteer=places, classify=classify)[:max(top, 0)]
    err.print(f"{len(messages)} messages → {len(spots)} hot spots shown "
              f"in {time.perf_counter() - started:.1f} s")
    if as_json:
        for rank, spot in enumerate(spots, start=1):
            sys.stdout.write(json.dumps(spot.as_dict(rank), ensure_ascii=False) + "\n")
        return
    table = Table("#", "热度", "条数", "首次", "最近", "地点", "描述")
    for rank, spot in enumerate(spots, start=1):
        table.add_row(str(rank), f"{spot.heat:.1f}", str(len(spot.members)),
                      spot.first.date().isoformat(), spot.last.date().isoformat(), spot.place,
                      spot.description)
    console.print(table)
