"""The public map (公开地图) at `/`: what the city is fixing, for anyone, without a login.

Server-rendered and light — no script at all, one small stylesheet, the grid map drawn as
inline SVG — so it works in WeChat's in-app browser on a phone. It shows open and recently
closed cases by category and status, and a page per case built from CaseService.public_view
with own=False, trimmed further: the item, the place rounded to the grid (or a landmark
near the pin), status and timeline in the catalogue's public words, the department. Never
the reporter, their phone or words, photos, staff, the exact pin or internal notes.

Routes:
  GET /                 map + list; ?state=open|closed|all &category=<big class> &grid=<code>
  GET /cases/<number>   one case
  GET /public/static/…  the stylesheet
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from quart import Blueprint, Response, abort, current_app, render_template, request

from adapters import app_state
from bot.cases import distance_m
from bot.public_cases import PublicFilter, is_public, public_cases
from bot.services import Services
from bot.texts import catalogue, t

public_map = Blueprint("public_map", __name__, template_folder="public_templates",
                       static_folder="public_static", static_url_path="/public/static")

MAP_WIDTH = 600.0
LANDMARK_KINDS = ("landmark", "school", "market", "compound")
LANDMARK_RADIUS_M = 300.0
# Light pages: no script, no frames, styles and images from here only.
_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'")


def _services() -> Services:
    return app_state.services()


@public_map.after_request
async def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "public, max-age=60"
    return response


def _map_paths(services: Services) -> tuple[list[dict[str, str]], str]:
    """SVG path data per grid (simplified, projected once per app: the grids are read-only
    for the process's life) and the viewBox."""
    cached = current_app.extensions.get("public_map_paths")
    if cached is not None:
        return cached
    grids = services.grids.grids
    if not grids:
        current_app.extensions["public_map_paths"] = ([], "0 0 1 1")
        return [], "0 0 1 1"
    bounds = [g.geometry.bounds for g in grids]
    west, south = min(b[0] for b in bounds), min(b[1] for b in bounds)
    east, north = max(b[2] for b in bounds), max(b[3] for b in bounds)
    squash = math.cos(math.radians((south + north) / 2))  # metres per degree of longitude
    scale = MAP_WIDTH / max((east - west) * squash, 1e-9)
    height = (north - south) * scale

    def ring(coords: Any) -> str:
        points = [f"{(x - west) * squash * scale:.1f},{(north - y) * scale:.1f}"
                  for x, y in coords]
        return "M" + "L".join(points) + "Z"

    paths = []
    for grid in grids:
        shape = grid.geometry.simplify(0.0001, preserve_topology=True)
        polygons = getattr(shape, "geoms", [shape])
        data = "".join(ring(p.exterior.coords) for p in polygons if hasattr(p, "exterior"))
        paths.append({"code": grid.code, "name": grid.name, "d": data})
    result = (paths, f"0 0 {MAP_WIDTH:.0f} {height:.0f}")
    current_app.extensions["public_map_paths"] = result
    return result


def _shade(count: int) -> str:
    """CSS class of a grid's count: none, 1, 2–3, 4–9, 10+."""
    return "c0" if count == 0 else "c1" if count == 1 else "c2" if count <= 3 \
        else "c3" if count <= 9 else "c4"


def _place(services: Services, case: Any) -> str:
    """The grid's name, or a well-known place near the pin: never the address or the pin."""
    grid = services.grids.get(case.grid_code)
    name = grid.name if grid else ""
    if case.lat is None or case.lon is None:
        return name
    near = [(distance_m(case.lat, case.lon, p.lat, p.lon), p.name)
            for p in services.gazetteer.places if p.kind in LANDMARK_KINDS]
    near = [n for n in near if n[0] <= LANDMARK_RADIUS_M]
    if not near:
        return name
    return t("public_map.near", landmark=min(near)[1], grid=name)


def _row(services: Services, case: Any) -> dict[str, Any]:
    view = services.cases.public_view(case, with_timeline=False, own=False)
    return {"number": view["number"], "item": view["item"]["label"],
            "big_class": view["item"]["big_class"], "status": view["status"],
            "status_label": view["status_label"], "grid": view["grid"]["name"],
            "department": view["department"], "filed": services.cases.local(case.created_at)}


@public_map.get("/")
async def index() -> str:
    s = _services()
    wanted = PublicFilter.read(request.args.get("state", "all"),
                               request.args.get("category", ""), request.args.get("grid", ""))
    cases, per_grid, classes = await public_cases(s.db, s.cases.clock(), wanted)
    paths, view_box = _map_paths(s)
    shapes = [{**p, "count": per_grid.get(p["code"], 0),
               "shade": _shade(per_grid.get(p["code"], 0))} for p in paths]
    grid = s.grids.get(wanted.grid_code) if wanted.grid_code else None
    return await render_template(
        "public/index.html", t=t, wanted=wanted, shapes=shapes, view_box=view_box,
        classes=classes, rows=[_row(s, c) for c in cases], total=sum(per_grid.values()),
        grid_name=grid.name if grid else "", states=("all", "open", "closed"))


@public_map.get("/cases/<number>")
async def case_page(number: str) -> str:
    s = _services()
    case = await s.cases.get(number[:32])
    if case is None or not is_public(case, s.cases.clock()):
        abort(404)
    view = s.cases.public_view(case, with_timeline=True, own=False)
    # Public words only: each status change says what the catalogue's public phrase says,
    # never the handler's note (it is the reporter's to read, not the street's).
    timeline = [{"at": s.cases.local(datetime.fromisoformat(e["at"])),
                 "note": t(f"public.status.{e['status']}") if e["status"]
                 else t(f"public.{e['action']}")} for e in view["timeline"]]
    return await render_template(
        "public/case.html", t=t, case=_row(s, case), place=_place(s, case),
        level=catalogue("zh").get(f"public_map.level.{view['level']}", ""), timeline=timeline,
        closed=s.cases.local(case.closed_at) if case.closed_at else "")

