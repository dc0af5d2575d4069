"""The dashboard's 热点 panel in headless chromium: cases about one building site by one
school, filed by four people in other words, show up as one ranked hot spot with its cases
listed and a numbered badge on the map."""

from __future__ import annotations

from typing import Any

from shapely.geometry import Point

from bot.cases import CaseDraft, ReporterRef
from tests.browser.conftest import LiveServer, login, screenshot

GRID = "440604001010101"  # 东华社区第1网格
SITE = [
    "东华小学旁边的工地晚上施工，噪音很大，孩子睡不着",
    "东华小学附近工地夜间施工扰民，电钻声到凌晨",
    "投诉东华小学边上工地半夜还在打桩，噪声太吵",
    "东华小学那边的建筑工地每天夜里施工，吵得没法休息",
]


def _file(server: LiveServer, n: int, text: str) -> str:
    s = server.services
    item = next(i for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    area = s.grids.get(GRID).geometry
    point = area.representative_point()
    nudged = Point(point.x + 0.0003 * n, point.y)
    spot = nudged if area.contains(nudged) else point
    filing = server.call(s.cases.file(
        CaseDraft(text=text, item_code=item.code, grid_code=GRID, lat=spot.y, lon=spot.x),
        ReporterRef("http", f"hotspot-browser-{n}"), attach_duplicates=False))
    return filing.case.number


def test_dashboard_lists_a_hot_spot_and_marks_it_on_the_map(live_server: LiveServer,
                                                           page: Any) -> None:
    server = live_server
    numbers = [_file(server, n, text) for n, text in enumerate(SITE)]
    login(page, server, "supervisor1")
    answers: list[str] = []
    page.on("response", lambda r: answers.append(f"{r.status} {r.url}")
            if "hotspots" in r.url else None)
    page.goto(f"{server.url}/console/dashboard")
    try:
        page.wait_for_selector('body[data-refreshes="1"]')
    except Exception:
        raise AssertionError(f"{page.script_errors} {answers}") from None
    # The first grouping in a fresh process loads jieba's dictionaries: give it time.
    try:
        page.wait_for_selector("#hotspots[data-count]", state="attached", timeout=60_000)
    except Exception:
        raise AssertionError(f"{answers} {page.inner_text('#dash-error')}") from None
    rows = page.locator("#hotspots-body tr")
    assert rows.count() >= 1
    ours = page.locator("#hotspots-body tr", has_text="东华小学")
    assert ours.count() == 1
    row = ours.first
    assert "工地" in row.inner_text() or "施工" in row.inner_text()
    links = row.locator("a.member")
    # (inside a closed <details>: their text, not their rendered text)
    assert sorted(links.nth(k).text_content() for k in range(links.count())) == sorted(numbers)
    rank = row.get_attribute("data-rank")
    badge = page.locator(".hotspot-marker", has_text=str(rank))
    assert badge.count() == 1
    # The badge's popup names the spot; the case-point layer is unaffected.
    badge.click()
    page.wait_for_selector(".leaflet-popup-content")
    assert "东华小学" in page.inner_text(".leaflet-popup-content")
    page.uncheck("#map-hotspots")
    assert page.locator(".hotspot-marker").count() == 0
    assert page.get_attribute("#hotspots-empty", "hidden") is not None
    screenshot(page, "dashboard_hotspots")

    # 未诉先办: the supervisor turns the spot into one case that names its members.
    row.locator("button.to-case").click()
    page.wait_for_selector("#hotspots-message a")
    link = page.locator("#hotspots-message a")
    made = link.get_attribute("href").rsplit("/", 1)[-1]
    assert made not in numbers and made in link.inner_text()
    case = server.call(server.services.cases.get(made))
    assert case is not None and all(n in case.text for n in numbers)
    assert page.script_errors == []
