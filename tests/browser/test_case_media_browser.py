"""The case page in a real browser: the reporter's photo (thumbnail and full view, only for
staff who may see the case), the map with the pin and the grid, and the console's Chinese
refusal pages with a way back."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from bot.media_store import open_store
from tests.browser.conftest import LiveServer, login, screenshot

PHOTO_NAME = "f0e1d2c3b4a5968778695a4b3c2d1e0f.jpg"


@pytest.fixture(autouse=True, scope="module")
def _own_media_folder(live_server: LiveServer,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """This module's photos in a folder of its own, not the checkout's var/media."""
    media = live_server.services.config.media
    before = media.local_dir
    media.local_dir = str(tmp_path_factory.mktemp("case-media"))
    yield
    media.local_dir = before


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


def _photo_case(server: LiveServer, photo: bytes) -> tuple[str, str]:
    """A mini-program report with a stored photo and a pin: (case number, grid code)."""
    from bot.cases import CaseDraft, ReporterRef

    s = server.services
    server.call(open_store(s.config).put(f"mp/{PHOTO_NAME}", photo))
    # A place and an item no other browser test uses: their calls must not join this case.
    spot = s.locator.from_text("梁园").spot
    filing = server.call(s.cases.file(
        CaseDraft(text="梁园门口的雨水井盖破了一个洞", item_code="C0103",
                  grid_code=spot.grid.code, lat=spot.lat, lon=spot.lon,
                  address="梁园东门", media=[f"var/media/mp/{PHOTO_NAME}"]),
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


def test_a_citizens_video_plays_on_the_case_page(live_server: LiveServer, page: Any,
                                                 open_page: Any) -> None:
    """A short video (as Telegram or WeChat leave it in the store): a <video> player whose
    source the console serves as video/mp4 within its CSP; not to a grid leader elsewhere."""
    from bot.cases import CaseDraft, ReporterRef
    from bot.media_store import keep_video
    from tests.fixtures.video import MP4

    s = live_server.services
    ref = live_server.call(keep_video(open_store(s.config), MP4, s.config.media.video_max_bytes))
    spot = s.locator.from_text("梁园").spot
    number = live_server.call(s.cases.file(
        CaseDraft(text="梁园门口的雨水井盖破了一个洞", item_code="C0103",
                  grid_code=spot.grid.code, lat=spot.lat, lon=spot.lon, media=[ref]),
        ReporterRef("telegram", "tg-video-reporter"), attach_duplicates=False)).case.number
    login(page, live_server, "dispatcher1")
    page.goto(f"{live_server.url}/console/cases/{number}")
    player = page.locator("video.case-video")
    player.wait_for()
    assert player.get_attribute("controls") is not None
    source = player.evaluate("v => v.currentSrc || v.src")
    answer = page.request.get(source)
    assert answer.status == 200 and answer.headers["content-type"] == "video/mp4"
    assert answer.body() == MP4
    assert page.locator("img.photo-thumb").count() == 0  # no picture made of a video
    screenshot(page, "case_video")

    outsider = open_page()
    login(outsider, live_server, _other_grid_leader(live_server, spot.grid.code))
    assert outsider.request.get(source).status == 404


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
    page.wait_for_url(re.compile(r"/console/cases(\?.*)?$"))  # the queue adds ?page=1
    screenshot(page, "out_of_scope_case_page")
    # The page scripts still get JSON for the same refusal.
    status = page.evaluate("async (u) => (await fetch(u)).status",
                           f"/console/api/cases/{number}")
    assert status == 404
    assert page.script_errors == []


def test_names_not_codes_one_actor_and_the_address_in_the_queue(live_server: LiveServer,
                                                                 page: Any) -> None:
    number, grid = _photo_case(live_server, _jpeg())
    if "wangqiang" not in live_server.users:
        live_server.add_user("wangqiang", "dispatcher", display_name="王强")
    login(page, live_server, "wangqiang")
    page.goto(f"{live_server.url}/console/cases/{number}")

    # 督办 (written as the console's staff) and then 派遣 (as a worker): one name for both.
    page.select_option("#action-name", "urge")
    page.fill("#action-reason", "请尽快处理")
    page.click("#action-submit")
    page.locator("#timeline").get_by_text("请尽快处理").wait_for()
    page.wait_for_load_state("load")
    page.select_option("#action-name", "dispatch")
    assert page.locator("#target-field").is_hidden()
    grid_name = live_server.services.grids.get(grid).name
    chosen = next(o for o in page.locator("#dispatch-target option").all_inner_texts()
                  if grid_name in o)
    assert grid not in chosen
    page.select_option("#dispatch-target", label=chosen)
    page.fill("#action-reason", "改派回网格")
    page.click("#action-submit")
    page.locator("#timeline").get_by_text("改派回网格").wait_for()
    entries = page.locator("#timeline li").all_inner_texts()
    mine = [e for e in entries if "请尽快处理" in e or "改派回网格" in e]
    assert len(mine) == 2 and all("王强" in e for e in mine)
    assert not [e for e in entries if "staff:" in e or "worker:" in e]
    assert grid_name in page.inner_text("#case-assignee")
    screenshot(page, "timeline_one_actor")

    # The queue shows where.
    page.goto(f"{live_server.url}/console/cases")
    row = page.locator(f"#case-{number}")
    row.wait_for()
    assert "梁园东门" in row.locator("td.address").inner_text()
    assert page.script_errors == []


def test_dashboard_map_names_grids_draws_streets_and_keeps_points_visible(
        live_server: LiveServer, page: Any) -> None:
    _photo_case(live_server, _jpeg())
    streets = [a for a in live_server.services.grids.areas.values() if a.level == "street"]
    login(page, live_server, "supervisor1")
    page.goto(f"{live_server.url}/console/dashboard")
    page.wait_for_function("() => Number(document.getElementById('map').dataset.points) > 0"
                           " && document.getElementById('map').dataset.streets")
    assert int(page.get_attribute("#map", "data-streets")) == len(streets) > 0
    assert page.locator("#map path.street-border").count() == len(streets)

    # Every case point in view is the top thing at its own centre (or another case's point
    # at the same spot, or the badge of a hot spot the other browser tests' cases made, which
    # stands for the cases under it): not hidden under a grid or a border, not blue on blue.
    hidden = page.evaluate("""() => { const box = document.getElementById('map')
          .getBoundingClientRect();
        return [...document.querySelectorAll('#map path.case-point')].filter((p) => {
          const r = p.getBoundingClientRect();
          const x = r.x + r.width / 2, y = r.y + r.height / 2;
          if (x < box.left || x > box.right || y < box.top || y > box.bottom) return false;
          const top = document.elementFromPoint(x, y);
          return !(top && (top.classList.contains('case-point')
                           || top.closest('.hotspot-marker'))); }).length; }""")
    assert hidden == 0
    fills = set(page.eval_on_selector_all("#map path.case-point",
                                          "ps => ps.map((p) => p.getAttribute('fill'))"))
    assert fills and fills <= {"#ff9f1c", "#d7301f"}

    # Zoomed in, the grids carry their names.
    page.locator("#map .leaflet-control-zoom-in").click()
    page.locator("#map .leaflet-control-zoom-in").click()
    page.locator("#map .grid-label").first.wait_for()
    names = set(page.locator("#map .grid-label").all_inner_texts())
    grid_names = {a.name for a in live_server.services.grids.areas.values()
                  if a.level == "grid"}
    assert names and names <= grid_names
    screenshot(page, "dashboard_map_streets_names")
    assert page.script_errors == []
