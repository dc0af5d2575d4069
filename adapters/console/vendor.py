"""The console's browser libraries (ECharts, Leaflet), served from this machine: installed
from the npm registry into frontend/node_modules by `./run` (`npm ci` on the lock file), so
the console loads nothing from a CDN and works without internet.

Only the files the pages need are served — never the rest of node_modules. When the packages
are not installed each of them answers 503 with a page saying how to install them.
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, send_file

from bot.config import PROJECT_ROOT
from bot.texts import t

NODE_MODULES = PROJECT_ROOT / "frontend" / "node_modules"
# URL path under /console/vendor/ → file in node_modules. leaflet.css finds its images at
# images/… next to itself, so they keep that layout.
FILES: dict[str, str] = {
    "echarts/echarts.min.js": "echarts/dist/echarts.min.js",
    "leaflet/leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet/leaflet.css": "leaflet/dist/leaflet.css",
    **{f"leaflet/images/{name}": f"leaflet/dist/images/{name}"
       for name in ("layers.png", "layers-2x.png", "marker-icon.png", "marker-icon-2x.png",
                    "marker-shadow.png")},
}
MAX_AGE_S = 24 * 3600  # pinned versions: a day of browser caching is safe

vendor = Blueprint("console_vendor", __name__, url_prefix="/console/vendor")


def missing(root: Path = NODE_MODULES) -> list[str]:
    """The served files that are not installed (empty when `npm ci` has run)."""
    return [source for source in FILES.values() if not (root / source).is_file()]


@vendor.get("/<path:name>")
async def vendor_file(name: str) -> Response:
    source = FILES.get(name)
    if source is None:
        return Response("not found", status=404, content_type="text/plain; charset=utf-8")
    path = NODE_MODULES / source
    if not path.is_file():
        message = t("dashboard.vendor_missing", file=f"frontend/node_modules/{source}")
        page = ("<!doctype html><meta charset=utf-8><title>gridbot</title>"
                f"<p>{message}</p>")
        return Response(page, status=503, content_type="text/html; charset=utf-8")
    response = await send_file(path, cache_timeout=MAX_AGE_S, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
