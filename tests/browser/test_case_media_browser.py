"""The case page in a real browser: the reporter's photo (thumbnail and full view, only for
staff who may see the case), the map with the pin and the grid, and the console's Chinese
refusal pages with a way back."""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image

from bot.media_store import open_store
from tests.browser.conftest import LiveServer, login, screenshot

PHOTO_NAME = "f0e1d2c3b4a5968778695a4b3c2d1e0f.jpg"


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


def _photo_case(server: LiveServer, photo: bytes) -> tuple[str, str]:
    """A mini-program report with a stored photo and a pin: (case number, grid code)."""
    from bot.cases import CaseDraft, ReporterRef

    s = server.services
    server.call(open_store(s.config).put(f"mp/{PHOTO_NAME}", photo))
    spot = s.locator.from_text("季华五路18号").spot
    filing = server.call(s.cases.file(
        CaseDraft(text="季华五路18号门口井盖破了一个洞", item_code="C0118",
                  grid_code=spot.grid.code, lat=spot.lat, lon=spot.lon,
                  address="季华五路18号", media=[f"var/media/mp/{PHOTO_NAME}"]),
        ReporterRef("mp", "o-photo-reporter"), attach_duplicates=False))
    return filing.case.number, spot.grid.code


def _other_grid_leader(server: LiveServer, grid: str) -> str:
    other = next(code for code, area in server.services.grids.areas.items()
                 if area.level == "grid" and code != grid)
    name = f"leader-{other}"
    if name not in server.users:
        server.add_user(name, "grid_leader", f"grid:{other}", display_name="冯永丽")
    return name


def test_the_photo_and_the_map_on_the_case_page(live_server: LiveServer, page: Any,
                                                open_page: Any) -> None:
    photo = _jpeg()
    number, grid = _photo_case(live_server, photo)
    login(page, live_server, "dispatcher1")
    page.goto(f"{live_server.url}/console/cases/{number}")

    thumb = page.locator("img.photo-thumb").first
    thumb.wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('img.photo-thumb');"
        " return i && i.complete && i.naturalWidth > 0; }")
    width = thumb.evaluate("img => img.naturalWidth")
    assert 0 < width <= 320  # a thumbnail, not the 800 px original
    full = thumb.evaluate("img => img.parentElement.href")
    answer = page.request.get(full)
    assert answer.status == 200 and answer.headers["content-type"] == "image/jpeg"
    assert answer.body() == photo
    assert "o-photo-reporter" not in page.content()

    # The map: Leaflet drew the grid's outline and the pin.
    page.locator('#case-map[data-ready="1"]').wait_for()
    assert page.get_attribute("#case-map", "data-grid") == grid
    assert page.locator("#case-map path.case-pin").count() == 1
    assert page.locator("#case-map path.leaflet-interactive").count() >= 2  # grid + pin
    grid_name = live_server.services.grids.get(grid).name
    page.locator("#case-map .grid-name").get_by_text(grid_name).wait_for()
    screenshot(page, "case_photo_and_map")
    assert page.script_errors == []

    # A grid leader of another grid: neither the case nor its photo.
    outsider = open_page()
    login(outsider, live_server, _other_grid_leader(live_server, grid))
    answer = outsider.request.get(full)
    assert answer.status == 404 and answer.body() != photo
    assert "image" not in answer.headers["content-type"]


def test_refusals_are_chinese_pages_with_a_way_back(live_server: LiveServer,
                                                   page: Any) -> None:
    number, grid = _photo_case(live_server, _jpeg())
    login(page, live_server, _other_grid_leader(live_server, grid))

    # The 受理 link a grid leader sees in the menu: a page saying why, not raw JSON.
    page.click("nav >> text=受理")
    page.locator("#error-page").wait_for()
    text = page.inner_text("main")
    assert "无权" in text and "\\u" not in page.content() and '{"error"' not in text
    assert page.locator("#error-page").get_attribute("data-status") == "403"
    screenshot(page, "refused_intake_page")

    # A case outside the account's area: the console's own 404, in Chinese, with a link back.
    response = page.goto(f"{live_server.url}/console/cases/{number}")
    assert response is not None and response.status == 404
    assert "Not Found" not in page.content()
    assert "没有找到这个案件" in page.inner_text("#error-page")
    page.click("#error-back")
    page.wait_for_url(re.compile(r"/console/cases$"))
    screenshot(page, "out_of_scope_case_page")
    # The page scripts still get JSON for the same refusal.
    status = page.evaluate("async (u) => (await fetch(u)).status",
                           f"/console/api/cases/{number}")
    assert status == 404
    assert page.script_errors == []
