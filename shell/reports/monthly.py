"""The monthly report (月报): the dashboard's figures for one calendar month, with charts, as a
self-contained HTML file or a PDF — in Chinese.

Charts are drawn with matplotlib (PNG embedded in the HTML; vector pages in the PDF through
PdfPages). Chinese needs a CJK font: the first one matplotlib or fontconfig knows is used
(`./run` installs Debian's fonts-wqy-zenhei when there is none); without one the report is
still written and `cjk_font()` returns None so the caller can say so.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen: the report is drawn to files only

import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Polygon as PolygonPatch
from shapely.geometry import shape

from bot.config import APPRAISAL_PARTS, AppraisalConfig
from bot.dashboard import Dashboard, Period, table
from bot.grids import GridMap
from bot.storage import Database
from bot.texts import t

# Fonts that carry Simplified Chinese, in order of preference.
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN", "SimHei",
             "Microsoft YaHei", "PingFang SC")
A4_PORTRAIT = (8.27, 11.69)
A4_LANDSCAPE = (11.69, 8.27)
TOP_ITEMS = 10
TOP_DEPARTMENTS = 15
RANKED = ("street", "department", "grid", "worker")  # the ranking table's units, in order
RANK_ENDS = 10  # a long ranking shows its best and worst ten
BLUE, GREEN, RED = "#3182bd", "#31a354", "#d7301f"


@dataclass
class MonthlyReport:
    month: str
    period: Period
    generated_at: datetime
    figures: dict[str, Any]

    @property
    def summary(self) -> dict[str, Any]:
        return self.figures["summary"]


async def build_report(db: Database, grids: GridMap, month: str, tz: Any,
                       now: datetime, appraisal: AppraisalConfig | None = None) -> MonthlyReport:
    """The whole city's figures for `month` ('2026-11'), with the appraisal (考核) under the
    weights given (config `[appraisal]`); raises PeriodError on a bad month."""
    period = Period.month(month, tz)
    board = Dashboard(db, grids, period, now, appraisal=appraisal or AppraisalConfig(),
                      ranked=RANKED)
    figures = await board.all()
    figures["appraisal"] = await board.figure("appraisal")
    return MonthlyReport(month.strip(), period, now, figures)


# -- fonts ----------------------------------------------------------------------------------

def cjk_font() -> str | None:
    """The name of a font with Chinese glyphs, registering fontconfig's if matplotlib's font
    cache predates its installation; None when the machine has none."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in known:
            return name
    if shutil.which("fc-list"):
        try:
            listing = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True,
                                     text=True, timeout=10, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        for line in listing.splitlines():
            path = line.split(":", 1)[0].strip()
            if path.endswith((".ttf", ".ttc", ".otf")) and Path(path).is_file():
                font_manager.fontManager.addfont(path)
        known = {f.name for f in font_manager.fontManager.ttflist}
        for name in CJK_FONTS:
            if name in known:
                return name
    return None


@contextmanager
def _style() -> Iterator[None]:
    # WenQuanYi Zen Hei has one weight (medium): matplotlib would warn on every text.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    font = cjk_font()
    families = ([font] if font else []) + ["DejaVu Sans"]
    with plt.rc_context({
        "font.family": "sans-serif", "font.sans-serif": families,
        "axes.unicode_minus": False,  # CJK fonts often lack U+2212
        # TrueType (Type 42) fonts: the PDF's text can be selected and searched.
        "pdf.fonttype": 42, "svg.fonttype": "none",
        "axes.spines.top": False, "axes.spines.right": False,
    }):
        yield


# -- charts -----------------------------------------------------------------------------------

def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _drawn(value: Any) -> str:
    """Text for a chart or PDF table: '›' (in item labels) is missing from common CJK fonts."""
    return str(value).replace(" › ", " / ")


def _empty(ax: Any) -> None:
    ax.text(0.5, 0.5, t("dashboard.no_data"), ha="center", va="center",
            transform=ax.transAxes, color="#888")
    ax.set_axis_off()


def chart_daily(report: MonthlyReport) -> Figure:
    days = report.figures["daily"]["days"]
    fig, ax = plt.subplots(figsize=(10, 4))
    labels = [d["date"][8:] for d in days]
    ax.bar(labels, [d["filed"] for d in days], color=BLUE, label=t("dashboard.col.filed"))
    ax.plot(labels, [d["closed"] for d in days], color=GREEN, marker="o", markersize=3,
            label=t("dashboard.col.closed"))
    ax.set_title(t("dashboard.chart.daily"))
    ax.legend(loc="upper left")
    # The default y locator is an AutoLocator (a MaxNLocator), which takes integer=; the
    # matplotlib stub types Locator.set_params() with no parameters at all.
    ax.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
    fig.tight_layout()
    return fig


def chart_categories(report: MonthlyReport) -> Figure:
    rows = report.figures["categories"]["big_classes"]
    fig, ax = plt.subplots(figsize=(7, 5))
    if not rows:
        _empty(ax)
    else:
        # Slivers under 3% (or past the eighth) share one "other" slice: labels stay legible.
        top = [r for r in rows[:8] if (r["share"] or 0) >= 0.03] or rows[:1]
        rest = sum(r["cases"] for r in rows[len(top):])
        values = [r["cases"] for r in top] + ([rest] if rest else [])
        names = [r["big_class"] for r in top] + ([t("dashboard.other")] if rest else [])
        ax.pie(values, labels=names, autopct="%1.1f%%", startangle=90, counterclock=False,
               wedgeprops={"width": 0.55, "edgecolor": "white"})
        ax.set_aspect("equal")
    ax.set_title(t("dashboard.chart.categories"))
    fig.tight_layout()
    return fig


def _barh(ax: Any, names: list[str], values: list[float], colour: str, fmt: str) -> None:
    bars = ax.barh(names[::-1], values[::-1], color=colour)
    ax.bar_label(bars, labels=[fmt.format(v) for v in values[::-1]], padding=3)


def chart_items(report: MonthlyReport) -> Figure:
    rows = report.figures["items"]["items"][:TOP_ITEMS]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if rows:
        _barh(ax, [r["item"] for r in rows], [r["cases"] for r in rows], BLUE, "{:.0f}")
    else:
        _empty(ax)
    ax.set_title(t("dashboard.chart.items"))
    fig.tight_layout()
    return fig


def chart_levels(report: MonthlyReport) -> Figure:
    solved = report.summary["solved_at"]
    fig, ax = plt.subplots(figsize=(6, 4))
    levels = ("grid", "street", "district")
    values = [(solved.get(lv) or 0) * 100 for lv in levels]
    bars = ax.bar([t(f"dashboard.level.{lv}") for lv in levels], values,
                  color=[GREEN, BLUE, "#756bb1"])
    ax.bar_label(bars, labels=[f"{v:.1f}%" for v in values], padding=3)
    ax.set_ylim(0, 110)
    ax.set_title(t("dashboard.chart.levels"))
    fig.tight_layout()
    return fig


def chart_departments(report: MonthlyReport) -> Figure:
    rows = [r for r in report.figures["departments"]["departments"]
            if r["on_time_rate"] is not None][:TOP_DEPARTMENTS]
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.35 * max(len(rows), 3)))
    if rows:
        _barh(ax, [f"{r['rank']}. {r['department']}" for r in rows],
              [r["on_time_rate"] * 100 for r in rows], GREEN, "{:.1f}%")
        ax.set_xlim(0, 115)
    else:
        _empty(ax)
    ax.set_title(t("dashboard.chart.departments"))
    fig.tight_layout()
    return fig


def chart_map(report: MonthlyReport) -> Figure:
    """The grid polygons shaded by cases filed in the month, open cases as points (WGS-84
    longitude/latitude drawn at the city's latitude so the map is not squashed)."""
    features = report.figures["grids"]["features"]
    fig, ax = plt.subplots(figsize=(8, 7))
    if not features:
        _empty(ax)
        return fig
    patches, values = [], []
    for feature in features:
        geometry = shape(feature["geometry"])
        polygons = getattr(geometry, "geoms", [geometry])
        for polygon in polygons:
            patches.append(PolygonPatch(list(polygon.exterior.coords), closed=True))
            values.append(feature["properties"]["filed"])
    shades = PatchCollection(patches, cmap="Blues", edgecolor="#666", linewidth=0.4)
    shades.set_array(values)
    shades.set_clim(0, max(max(values), 1))
    ax.add_collection(shades)
    points = report.figures["points"]["points"]
    for overdue, colour in ((False, BLUE), (True, RED)):
        chosen = [p for p in points if p["overdue"] is overdue]
        if chosen:
            ax.scatter([p["lon"] for p in chosen], [p["lat"] for p in chosen], s=9, c=colour,
                       edgecolors="white", linewidths=0.4, zorder=3)
    ax.autoscale_view()
    middle = sum(ax.get_ylim()) / 2
    ax.set_aspect(1 / math.cos(math.radians(middle)))
    ax.set_axis_off()
    fig.colorbar(shades, ax=ax, shrink=0.6, label=t("dashboard.col.filed"))
    ax.set_title(t("dashboard.report.map_title"))
    fig.tight_layout()
    return fig


CHARTS = (chart_daily, chart_categories, chart_items, chart_levels, chart_departments,
          chart_map)


# -- texts ------------------------------------------------------------------------------------

def overview(report: MonthlyReport) -> list[str]:
    s = report.summary
    if not s["cases_filed"] and not s["open_now"]:
        return [t("dashboard.report.none")]
    lines = [t("dashboard.report.overview", filed=s["cases_filed"], closed=s["closed"],
               closure=_pct(s["closure_rate"]), on_time=_pct(s["on_time_rate"]),
               satisfaction=_pct(s["satisfaction_rate"]), on_spot=_pct(s["on_the_spot_share"]),
               open_now=s["open_now"], overdue_now=s["overdue_now"])]
    top = report.figures["categories"]["big_classes"][:3]
    if top:
        lines.append(t("dashboard.report.top_categories", list="、".join(
            f"{r['big_class']} {_pct(r['share'])}" for r in top)))
    return lines


def _title(report: MonthlyReport) -> tuple[str, str]:
    p = report.period
    return (t("dashboard.report.title", month=report.month),
            t("dashboard.report.subtitle", start=p.first_day.isoformat(),
              end=p.last_day.isoformat(), tz=p.tz.key,
              at=report.generated_at.astimezone(p.tz).strftime("%Y-%m-%d %H:%M")))


# The tables printed after the charts (the daily table is long: HTML only).
TABLES = ("summary", "departments", "overdue", "categories", "items")


def ranking(report: MonthlyReport) -> tuple[list[str], list[list[Any]]]:
    """The appraisal ranking: per unit its best and worst RANK_ENDS rows (all when fewer),
    rank, name, total and each part's score."""
    header = [t("dashboard.appraisal.col.unit"), t("dashboard.appraisal.col.rank"),
              t("dashboard.appraisal.col.name"), t("dashboard.appraisal.col.score"),
              *(t(f"dashboard.appraisal.part.{p}") for p in APPRAISAL_PARTS)]
    rows: list[list[Any]] = []
    units = report.figures["appraisal"]["units"]
    for unit in RANKED:
        ranked = units.get(unit, [])
        if len(ranked) > 2 * RANK_ENDS:
            ranked = ranked[:RANK_ENDS] + ranked[-RANK_ENDS:]
        for row in ranked:
            rows.append([t(f"dashboard.appraisal.unit.{unit}"), row["rank"], row["name"],
                         "–" if row["score"] is None else f"{row['score']:.1f}",
                         *("–" if row["parts"][p]["score"] is None
                           else f"{row['parts'][p]['score']:.0f}" for p in APPRAISAL_PARTS)])
    return header, rows


# -- HTML -------------------------------------------------------------------------------------

_CSS = """
body { font-family: "Noto Sans CJK SC", "WenQuanYi Zen Hei", "Microsoft YaHei", sans-serif;
  max-width: 1000px; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } .sub { color: #666; margin-top: 0; }
img { max-width: 100%; display: block; margin: 1rem auto; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; width: 100%; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .3rem .5rem; text-align: left; }
th { background: #f0f4f8; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
"""


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _html_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        return f'<td class="n">{html.escape(str(value))}</td>' if numeric else \
            f"<td>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: MonthlyReport) -> str:
    """One self-contained file: styles inline, charts as embedded PNG, no external links."""
    title, subtitle = _title(report)
    parts = [f"<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p class=\"sub\">{html.escape(subtitle)}</p>"]
    parts += [f"<p>{html.escape(line)}</p>" for line in overview(report)]
    with _style():
        for draw in CHARTS:
            fig = draw(report)
            alt = fig.axes[0].get_title() if fig.axes else ""
            parts.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,'
                         f'{_png(fig)}">')
    for name in (*TABLES, "daily"):
        parts.append(f"<h2>{html.escape(t(f'dashboard.chart.{name}'))}</h2>")
        parts.append(_html_table(*table(name, report.figures[name])))
    parts.append(f"<h2>{html.escape(t('dashboard.chart.appraisal'))}</h2>"
                 f"<p class=\"sub\">{html.escape(t('dashboard.appraisal.rule'))}</p>")
    parts.append(_html_table(*ranking(report)))
    parts.append("</body></html>")
    return "\n".join(parts)


# -- PDF --------------------------------------------------------------------------------------

def _text_page(report: MonthlyReport) -> Figure:
    title, subtitle = _title(report)
    fig = plt.figure(figsize=A4_PORTRAIT)
    fig.text(0.08, 0.93, title, fontsize=18, weight="bold")
    fig.text(0.08, 0.905, subtitle, fontsize=9, color="#666")
    y = 0.86
    for line in overview(report):
        wrapped = textwrap.fill(line, width=40)
        fig.text(0.08, y, wrapped, fontsize=11, va="top", linespacing=1.6)
        y -= 0.03 * (wrapped.count("\n") + 1) + 0.02
    header, rows = table("summary", report.summary)
    ax = fig.add_axes((0.08, 0.08, 0.84, max(0.1, y - 0.12)))
    ax.set_axis_off()
    grid = ax.table(cellText=[[_drawn(c) for c in r] for r in rows], colLabels=header,
                    loc="upper center", cellLoc="left", colLoc="left")
    grid.auto_set_font_size(False)
    grid.set_fontsize(10)
    grid.scale(1, 1.5)
    return fig


def _table_pages(name: str, header: list[str], rows: list[list[Any]],
                 per_page: int = 28) -> Iterator[Figure]:
    chunks = [rows[i:i + per_page] for i in range(0, len(rows), per_page)] or [[]]
    for index, chunk in enumerate(chunks):
        fig = plt.figure(figsize=A4_LANDSCAPE)
        suffix = f" ({index + 1}/{len(chunks)})" if len(chunks) > 1 else ""
        fig.text(0.05, 0.94, t(f"dashboard.chart.{name}") + suffix, fontsize=14, weight="bold")
        ax = fig.add_axes((0.05, 0.05, 0.9, 0.85))
        ax.set_axis_off()
        if chunk:
            grid = ax.table(cellText=[[_drawn(c) for c in r] for r in chunk], colLabels=header,
                            loc="upper center", cellLoc="left", colLoc="left")
            grid.auto_set_font_size(False)
            grid.set_fontsize(8)
            grid.auto_set_column_width(list(range(len(header))))
            grid.scale(1, 1.4)
        else:
            _empty(ax)
        yield fig


def write_pdf(report: MonthlyReport, path: Path) -> None:
    title, _ = _title(report)
    with _style(), PdfPages(path, metadata={"Title": title, "Creator": "gridbot"}) as pdf:
        for fig in [_text_page(report)] + [draw(report) for draw in CHARTS]:
            pdf.savefig(fig)
            plt.close(fig)
        for name in TABLES[1:]:
            for fig in _table_pages(name, *table(name, report.figures[name])):
                pdf.savefig(fig)
                plt.close(fig)
        for fig in _table_pages("appraisal", *ranking(report)):
            pdf.savefig(fig)
            plt.close(fig)


def write_report(report: MonthlyReport, path: Path) -> None:
    """By the file's suffix: .html or .pdf. Written to a temporary name and moved into place,
    so a failure never leaves half a report where the last good one was."""
    suffix = path.suffix.lower()
    if suffix not in (".html", ".htm", ".pdf"):
        raise ValueError(t("dashboard.report.bad_out", path=path))
    partial = path.with_name(f".{path.name}.partial")
    try:
        if suffix == ".pdf":
            write_pdf(report, partial)
        else:
            partial.write_text(render_html(report), encoding="utf-8")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
