"""Patrol tracks in a real browser: a patrol-found case's page draws the track of the patrol
it was found on beside the pin and the grid, and the dashboard draws today's tracks — for
a supervisor; the hotline operator's case page has no track. Offline Leaflet, no tiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.browser.conftest import LiveServer, login, screenshot

GRID = "440604001030103"  # 同济社区第3网格
TRACK = [(23.0214, 113.1214), (23.0203, 113.1215), (23.0192, 113.1216), (23.0181, 113.1217)]


def _patrol_case(server: LiveServer) -> str:
    """A worker's patrol with a track, and a find reported on it: the case number."""
    from bot.cases import CaseDraft, ReporterRef

    s = server.services

    async def run() -> str:
        now = datetime.now(UTC)
        worker = await s.teams.add_worker("巡查员乙", "grid_worker", f"grid:{GRID}",
                                          "telegram", "778001", now)
        await s.patrols.start(worker, now - timedelta(minutes=10))
        for k, (lat, lon) in enumerate(TRACK):
            await s.patrols.add_point(worker, lat, lon, now - timedelta(minutes=9 - k))
        item = next(i for i in s.catalogue.items if i.name == "非法小广告")
        filing = await s.cases.file(CaseDraft(
            text="巡查发现电线杆上贴满小广告", item_code=item.code, grid_code=GRID,
            lat=23.0197, lon=113.1213, source="patrol"), ReporterRef("telegram", "778001"),
            attach_duplicates=False)
        await s.patrols.end(worker, datetime.now(UTC))
        return filing.case.number

    return server.call(run())


def test_the_track_on_the_case_page_and_the_dashboard(live_server: LiveServer, page: Any,
                                                      open_page: Any) -> None:
    number = _patrol_case(live_server)
    login(page, live_server, "supervisor1")
    page.goto(f"{live_server.url}/console/cases/{number}")
    page.locator('#case-map[data-ready="1"]').wait_for()
    assert page.get_attribute("#case-map", "data-track") == str(len(TRACK))
    assert page.locator("#case-map path.patrol-track").count() == 1
    assert page.locator("#case-map path.case-pin").count() == 1
    assert "巡查员乙" in page.inner_text("#case-track-note")
    # The drawn line runs where the track is: its first vertex where the walk began.
    box = page.locator("#case-map path.patrol-track").bounding_box()
    assert box is not None and box["height"] > 3 * max(box["width"], 1)  # a walk due south
    screenshot(page, "patrol_track_on_case_page")
    assert page.script_errors == []

    page.goto(f"{live_server.url}/console/dashboard")
    page.wait_for_function("() => document.getElementById('map').dataset.patrols !== undefined")
    assert int(page.get_attribute("#map", "data-patrols")) >= 1
    page.locator("#map path.patrol-track").first.wait_for()
    page.uncheck("#map-patrols")
    assert page.locator("#map path.patrol-track").count() == 0
    page.check("#map-patrols")
    assert page.locator("#map path.patrol-track").count() >= 1
    screenshot(page, "patrol_tracks_on_dashboard")
    assert page.script_errors == []

    # The hotline operator sees the case but not where the worker walked.
    operator = open_page()
    login(operator, live_server, "operator1")
    operator.goto(f"{live_server.url}/console/cases/{number}")
    operator.locator('#case-map[data-ready="1"]').wait_for()
    assert operator.locator("#case-map path.patrol-track").count() == 0
    assert operator.locator("#case-track").count() == 0
    assert operator.script_errors == []
