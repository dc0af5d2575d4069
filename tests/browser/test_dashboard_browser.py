"""The dashboard in headless chromium: the charts and the map of grid polygons render from
files served by this app alone (no request leaves 127.0.0.1), and a newly filed case shows
up in the figures and on the map without reloading the page."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shapely.geometry import Point

from bot.cases import CaseDraft, ReporterRef
from tests.browser.conftest import LiveServer, login, screenshot

GRID = "440604001010101"  # 东华社区第1网格


def _file_case(server: LiveServer, n: int, grid: str = GRID) -> str:
    s = server.services
    item = next(i for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    area = s.grids.get(grid).geometry
    point = area.representative_point()
    # A few dozen metres apart and inside the grid's polygon, as a real pin would be.
    nudged = Point(point.x, point.y + 0.0004 * n)
    spot = nudged if area.contains(nudged) else point
    filing = server.call(s.cases.file(
        CaseDraft(text=f"看板测试 {n}", item_code=item.code, grid_code=grid,
                  lat=spot.y, lon=spot.x),
        ReporterRef("http", f"dashboard-browser-{n}"), attach_duplicates=False))
    return filing.case.number


def _kpi(page: Any, key: str) -> str:
    return page.inner_text(f'.kpi[data-kpi="{key}"] .kpi-value')


def test_dashboard_draws_charts_and_map_and_updates_after_a_filing(
        live_server: LiveServer, page: Any) -> None:
    server = live_server
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    _file_case(server, 1)

    login(page, server, "supervisor1")
    page.clock.install()  # the page's timers run on a clock the test can move forward
    page.goto(f"{server.url}/console/dashboard")
    page.wait_for_selector('body[data-refreshes="1"]')

    # Every chart drew (SVG renderer) and the map has one polygon per grid cell.
    for name in ("daily", "categories", "items", "levels", "departments"):
        assert page.locator(f"#chart-{name} svg").count() == 1, name
    grids = len(server.services.grids.grids)
    assert page.get_attribute("#map", "data-grids") == str(grids)
    # Today's patrol tracks (another browser test's) are paths too.
    areas = "#map path.leaflet-interactive:not(.case-point):not(.patrol-track)"
    assert page.locator(areas).count() == grids
    assert page.get_attribute("#map", "data-tiles-on") == "0"  # no tiles configured
    filed = int(_kpi(page, "cases_filed"))
    open_now = int(_kpi(page, "open_now"))
    points = int(page.get_attribute("#map", "data-points"))
    assert filed >= 1 and points >= 1
    assert page.locator("#map path.case-point").count() == points
    screenshot(page, "dashboard_before_filing")

    number = _file_case(server, 2)
    # The event stream refreshes the figures without a reload. The page keeps 10 s between
    # two loads: its clock is moved on instead of waiting for that on the wall clock.
    deadline = time.monotonic() + 45
    while _kpi(page, "cases_filed") != str(filed + 1):
        assert time.monotonic() < deadline, "the figures did not follow the new case"
        page.clock.fast_forward(2_000)
        page.wait_for_timeout(200)
    assert int(_kpi(page, "open_now")) == open_now + 1
    page.wait_for_function(
        "n => document.getElementById('map').dataset.points === String(n)", arg=points + 1)
    assert page.locator("#map path.case-point").count() == points + 1
    assert page.get_attribute("body", "data-refreshes") != "1"
    assert page.get_attribute("#live", "class") == "badge ok"  # on the event stream
    screenshot(page, "dashboard_after_filing")

    # The CSV export of a chart downloads with the BOM Excel needs.
    with page.expect_download() as download:
        page.click('a.csv[data-figure="points"]')
    body = Path(download.value.path()).read_bytes()
    assert body.startswith("\ufeff".encode()) and number.encode() in body

    hosts = {urlsplit(url).hostname for url in requests if not url.startswith(("data:",
                                                                                 "blob:"))}
    assert hosts == {"127.0.0.1"}, f"requests left the machine: {hosts}"
    assert page.script_errors == []


def test_without_the_event_stream_the_dashboard_polls(live_server: LiveServer,
                                                      page: Any) -> None:
    """A proxy that buffers server-sent events (or a browser without them): the figures still
    follow within the 30 s poll."""
    server = live_server
    login(page, server, "dispatcher1")
    page.add_init_script("delete window.EventSource;")  # from the dashboard on
    page.clock.install()  # the page's timers run on a clock the test can move forward
    page.goto(f"{server.url}/console/dashboard")
    page.wait_for_selector('body[data-refreshes="1"]')
    assert page.get_attribute("#live", "class") == "badge muted"
    filed = int(_kpi(page, "cases_filed"))
    _file_case(server, 3)
    page.clock.fast_forward(31_000)  # the 30 s poll is due (not waited for on the wall clock)
    page.wait_for_function(
        "n => document.querySelector('.kpi[data-kpi=\"cases_filed\"] .kpi-value')"
        "?.textContent === String(n)", arg=filed + 1, timeout=45_000)
    screenshot(page, "dashboard_polling")
    assert page.script_errors == []
