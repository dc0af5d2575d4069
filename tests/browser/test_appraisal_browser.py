"""The dashboard's 考核 panel in headless chromium: a worker who patrolled and solved a find
on the spot ranks with each part's score; a grid leader of another street does not see
them; the public map shows nothing of them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.cases import CaseDraft, ReporterRef, utcnow
from tests.browser.conftest import LiveServer, login, screenshot

GRID = "440604001010203"  # 升平社区第3网格, 祖庙街道
WORKER = "考核测试员"


def _patrol_and_find(server: LiveServer) -> str:
    """The worker patrols their grid, reports what they find and solves it on the spot."""
    s = server.services
    worker = server.call(s.teams.add_worker(WORKER, "grid_worker", f"grid:{GRID}", "telegram",
                                            "appraisal-browser", utcnow() - timedelta(hours=2)))
    area = s.grids.get(GRID).geometry
    point = area.representative_point()
    start = utcnow() - timedelta(minutes=30)
    server.call(s.patrols.start(worker, start))
    for k in range(4):
        server.call(s.patrols.add_point(worker, point.y + 0.0004 * (k - 2), point.x,
                                        start + timedelta(minutes=5 * k)))
    item = next(i for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    number = server.call(s.cases.file(
        CaseDraft(text="巡查发现 小广告", item_code=item.code, grid_code=GRID, lat=point.y,
                  lon=point.x, media=["appraisal-before"], source="patrol"),
        ReporterRef("telegram", "appraisal-browser"), attach_duplicates=False)).case.number
    server.call(s.actions.resolve(number, worker, "即办", media=["appraisal-after"]))
    server.call(s.patrols.end(worker, utcnow()))
    return number


def _row(page: Any, end: str, name: str) -> Any:
    return page.locator(f"#appraisal-{end} tbody tr", has_text=name)


def test_the_appraisal_panel_ranks_workers_and_grids(live_server: LiveServer, page: Any,
                                                     open_page: Any) -> None:
    server = live_server
    _patrol_and_find(server)

    login(page, server, "supervisor1")
    page.goto(f"{server.url}/console/dashboard")
    page.wait_for_selector("#appraisal[data-rows]")
    assert page.get_attribute("#appraisal", "data-unit") == "grid"
    grid_row = _row(page, "top", "升平社区第3网格")
    assert grid_row.count() == 1
    page.select_option("#appraisal-unit", "worker")
    page.wait_for_selector('#appraisal[data-unit="worker"]')
    row = _row(page, "top", WORKER)
    assert row.count() == 1
    cells = row.locator("td").all_inner_texts()
    assert len(cells) == 3 + 7 and cells[2] != "–" and float(cells[2]) > 0
    # 即办 of their own find: the on-the-spot part is full marks; its figure in the tooltip.
    on_spot = row.locator('td[data-part="on_spot"]')
    assert on_spot.inner_text() == "100"
    assert "100.0%" in (on_spot.get_attribute("title") or "")
    screenshot(page, "dashboard_appraisal")

    with page.expect_download() as download:
        page.click('a.csv[data-figure="appraisal"]')
    body = Path(download.value.path()).read_bytes().decode("utf-8-sig")
    assert WORKER in body and "升平社区第3网格" in body
    assert page.script_errors == []

    # A grid leader of another street sees neither this worker nor this grid.
    server.add_user("leader_zhangcha", "grid_leader", "street:440604002")
    other = open_page()
    login(other, server, "leader_zhangcha")
    other.goto(f"{server.url}/console/dashboard")
    other.wait_for_selector("#appraisal[data-rows]")
    assert _row(other, "top", "升平社区第3网格").count() == 0
    other.select_option("#appraisal-unit", "worker")
    other.wait_for_selector('#appraisal[data-unit="worker"]')
    assert WORKER not in other.inner_text("#appraisal")
    assert other.script_errors == []

    # The public map gains nothing: no worker, no appraisal.
    public = open_page()
    public.goto(f"{server.url}/")
    text = public.content()
    assert WORKER not in text and "考核" not in text
