"""The dashboard (看板) in the staff console: one page of charts and a map, every figure as
JSON for the page and as CSV for Excel. What an account sees is narrowed by its scope
(`bot.staff.visible_cases`), the same rule as the case queue.

Routes (on the console blueprint, so sessions, CSRF and the security headers apply):
  GET /console/dashboard                          the page
  GET /console/dashboard/api/all.json             every figure (the page's refresh;
                                                  geometry=0: grid polygons left out)
  GET /console/dashboard/api/<figure>.json|.csv   one figure; figures: bot.dashboard.FIGURES
  GET /console/dashboard/hotspots.json            hot spots (热点) among the period's cases
  POST /console/dashboard/hotspots/case           {"period", "members"}: file one case for
                                                  that hot spot (未诉先办)
Query: period=7d | 30d | month | YYYY-MM (default 30d).
"""

from __future__ import annotations

import csv
import io
import secrets
from typing import Any

from quart import Response, jsonify, render_template, request
from shapely.geometry import mapping

from adapters import app_state
from adapters.console import console
from adapters.console.auth import audit, current_staff, require_staff, services
from bot.config import APPRAISAL_PARTS
from bot.dashboard import (
    FIGURES,
    Dashboard,
    Period,
    PeriodError,
    ranked_units,
    table,
    visible_grid_codes,
)
from bot.hotspots import file_hotspot_case, live_hotspots
from bot.staff import visible_cases
from bot.texts import catalogue, t

DEFAULT_PERIOD = "30d"
# Cells Excel would run as a formula (CSV injection): shown as text instead.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _texts() -> dict[str, str]:
    """The texts dashboard.js needs (a JSON block in the page, never an inline script)."""
    zh = catalogue("zh")
    return {k: v for k, v in zh.items() if k.startswith(("dashboard.", "status.", "console."))}


def _period(text: str) -> Period:
    s = services()
    tz = s.cases.tz
    now = s.cases.clock()
    if text in ("7d", "30d"):
        return Period.last_days(int(text[:-1]), now, tz)
    if text == "month":
        return Period.month(now.astimezone(tz).strftime("%Y-%m"), tz)
    return Period.month(text, tz)


def _dashboard() -> Dashboard:
    staff = current_staff()
    assert staff is not None  # require_staff ran first
    s = services()
    period = _period(request.args.get("period", DEFAULT_PERIOD)[:16])
    return Dashboard(s.db, s.grids, period, s.cases.clock(), visible_cases(staff, s.grids),
                     visible_grid_codes(staff.role, staff.scope, s.grids),
                     app_state.config().appraisal, ranked_units(staff.role))


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


@console.get("/dashboard")
@require_staff()
async def dashboard_page() -> Any:
    return await render_template(
        "console/dashboard.html", nav="dashboard", texts=_texts(),
        periods=[("7d", t("dashboard.period.7")), ("30d", t("dashboard.period.30")),
                 ("month", t("dashboard.period.month"))],
        default_period=DEFAULT_PERIOD, appraisal_parts=APPRAISAL_PARTS,
        map_tiles=app_state.config().console.map_tiles,
        charts=[(name, t(f"dashboard.chart.{name}")) for name in FIGURES])


@console.get("/dashboard/api/streets.geojson")
@require_staff()
async def dashboard_streets() -> Response:
    """The streets' (镇街) outlines, drawn over the grids so a district's map reads by
    street. Borders only, no figures: the same for every account."""
    s = services()
    features = [{"type": "Feature", "geometry": mapping(a.geometry),
                 "properties": {"code": a.code, "name": a.name}}
                for a in sorted(s.grids.areas.values(), key=lambda a: a.code)
                if a.level == "street"]
    return jsonify({"type": "FeatureCollection", "features": features})


@console.get("/dashboard/api/<name>.json")
@require_staff()
async def dashboard_json(name: str) -> Response:
    if name != "all" and name not in FIGURES:
        return _error(404, t("dashboard.unknown_figure", name=name[:40]))
    try:
        board = _dashboard()
    except PeriodError as exc:
        return _error(400, t("dashboard.bad_period", error=exc))
    if name == "all":
        data = await board.all(geometry=request.args.get("geometry") != "0")
    else:
        data = await board.figure(name)
    return jsonify({"period": {"from": board.period.first_day.isoformat(),
                               "to": board.period.last_day.isoformat()},
                    "figures" if name == "all" else "figure": data})


async def _hotspots(period_text: str) -> list[dict[str, Any]]:
    staff = current_staff()
    assert staff is not None  # require_staff ran first
    s = services()
    period = _period(period_text[:16])
    until = min(period.end, s.cases.clock())
    return await live_hotspots(s.db, s.grids, period.start, until,
                               visible_cases(staff, s.grids), gazetteer=s.gazetteer)


@console.get("/dashboard/hotspots.json")
@require_staff()
async def dashboard_hotspots() -> Response:
    try:
        spots = await _hotspots(request.args.get("period", DEFAULT_PERIOD))
    except PeriodError as exc:
        return _error(400, t("dashboard.bad_period", error=exc))
    return jsonify({"hotspots": spots})


@console.post("/dashboard/hotspots/case")
@require_staff("dispatcher", "supervisor")
async def dashboard_hotspot_case() -> Response:
    """未诉先办: the hot spot is found again on the server (the page's copy is only a key),
    so a case is filed only for a spot this account can see, as it stands now."""
    body = await request.get_json(silent=True) or {}
    wanted = body.get("members")
    if not isinstance(wanted, list) or not all(isinstance(m, str) for m in wanted):
        return _error(400, t("dashboard.hotspots.changed"))
    try:
        spots = await _hotspots(str(body.get("period") or DEFAULT_PERIOD))
    except PeriodError as exc:
        return _error(400, t("dashboard.bad_period", error=exc))
    spot = next((v for v in spots if sorted(v["members"]) == sorted(wanted)), None)
    if spot is None or not spot.get("item"):
        return _error(409, t("dashboard.hotspots.changed"))
    staff = current_staff()
    assert staff is not None
    # Filed as the hotline files a call: an opaque reporter on a channel that pushes nothing.
    filing = await file_hotspot_case(services().cases, spot, "hotline", secrets.token_hex(12))
    await audit("hotspot_case", filing.case.number, members=len(spot["members"]),
                description=spot["description"][:80])
    response = jsonify({"number": filing.case.number,
                        "url": f"/console/cases/{filing.case.number}",
                        "message": t("dashboard.hotspots.filed", number=filing.case.number)})
    response.status_code = 201
    return response


def to_csv(header: list[str], rows: list[list[Any]]) -> str:
    """CSV text that Excel opens as UTF-8 (the BOM) with Chinese intact."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["'" + c if isinstance(c, str) and c.startswith(_FORMULA_START) else c
                         for c in row])
    return "\ufeff" + buffer.getvalue()


@console.get("/dashboard/api/<name>.csv")
@require_staff()
async def dashboard_csv(name: str) -> Response:
    if name not in FIGURES:
        return _error(404, t("dashboard.unknown_figure", name=name[:40]))
    try:
        board = _dashboard()
    except PeriodError as exc:
        return _error(400, t("dashboard.bad_period", error=exc))
    header, rows = table(name, await board.figure(name))
    first, last = board.period.first_day.isoformat(), board.period.last_day.isoformat()
    await audit("dashboard_export", name, period=f"{first}/{last}", rows=len(rows))
    response = Response(to_csv(header, rows), content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="gridbot-{name}-{first}_{last}.csv"')
    return response
