"""The public map in headless chromium at a phone's size, without logging in: the grid map,
the filters, a grid's cases, a case page — and no personal data or internal note on any page
it walks through, no script, no request leaving the machine."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from bot.cases import CaseDraft, ReporterRef
from tests.browser.conftest import LiveServer, screenshot

GRID = "440604001010101"  # 东华社区第1网格
SECRETS = ["赵大海", "13700001111", "137****1111", "东华里8号", "楼下的井盖松了好几天",
           "media/pm-photo.jpg", "钱师傅", "已经拧紧"]


def _file(server: LiveServer) -> tuple[str, str]:
    s = server.services
    item = next(i for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    school = next(p for p in s.gazetteer.places if p.name == "东华小学")
    filing = server.call(s.cases.file(
        CaseDraft(text="我是赵大海，电话13700001111，东华里8号楼下的井盖松了好几天",
                  address="东华里8号", item_code=item.code, grid_code=GRID,
                  lat=school.lat + 0.0003, lon=school.lon, media=["media/pm-photo.jpg"]),
        ReporterRef("http", "public-map-browser", phone="13700001111"),
        attach_duplicates=False))
    number = filing.case.number
    worker = server.call(s.teams.add_worker("钱师傅", "grid_worker", f"grid:{GRID}", "t",
                                            "pm-browser-w", s.cases.clock()))
    server.call(s.actions.resolve(number, worker, "钱师傅已经拧紧"))
    return number, item.big_class


def _private(page: Any) -> None:
    html = page.content()
    for secret in SECRETS:
        assert secret not in html, secret
    assert page.locator("script").count() == 0


def test_walk_the_public_map_and_a_case_page(live_server: LiveServer, open_page: Any) -> None:
    server = live_server
    number, big_class = _file(server)
    page = open_page()
    page.set_viewport_size({"width": 390, "height": 844})  # a phone, as in WeChat
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    page.goto(f"{server.url}/")  # no login
    assert page.locator("svg path.grid").count() == len(server.services.grids.grids)
    assert page.locator(f'path[data-grid="{GRID}"]').get_attribute("data-count") != "0"
    assert page.locator(f'li.case[data-number="{number}"]').count() == 1
    _private(page)
    screenshot(page, "public_map")

    # Filter by category and status with the form, as a citizen would.
    page.select_option('select[name="category"]', big_class)
    page.select_option('select[name="state"]', "open")
    page.click('form.filters button[type="submit"]')
    page.wait_for_url("**/?state=open*")
    assert page.locator(f'li.case[data-number="{number}"]').count() == 1
    assert all(big_class in t for t in page.locator("li.case .item").all_inner_texts())
    page.select_option('select[name="state"]', "closed")
    page.click('form.filters button[type="submit"]')
    page.wait_for_url("**/?state=closed*")
    assert page.locator(f'li.case[data-number="{number}"]').count() == 0

    # The grid on the map leads to its cases; the case to its page.
    page.goto(f"{server.url}/")
    page.locator(f'path[data-grid="{GRID}"]').dispatch_event("click")
    page.wait_for_url(f"**/?grid={GRID}*")
    assert "东华社区第1网格" in page.inner_text("section.list h2")
    page.click(f'li.case[data-number="{number}"] a')
    page.wait_for_url(f"**/cases/{number}")
    body = page.inner_text("article.case-page")
    assert number in body and "东华小学附近" in body
    assert "已处置，等待核查" in body  # the handler's note is not shown, the public phrase is
    _private(page)
    screenshot(page, "public_case")

    hosts = {urlsplit(url).hostname for url in requests if not url.startswith("data:")}
    assert hosts == {"127.0.0.1"}, f"requests left the machine: {hosts}"
    assert page.script_errors == []
