"""The public map at `/` (adapters/public_map.py): open and recently closed cases by status
and category, a page per case — and nothing personal or internal anywhere, on both storage
set-ups, through the real app."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from bot.cases import CaseDraft, ReporterRef
from bot.services import Services
from shell.app import create_app

G1 = "440604001010101"  # 东华社区第1网格 (东华小学 is in it)
G2 = "440604004030301"  # 南庄村第1网格
# What must never be shown: the reporter's name, phone, words and address, the photo, the
# worker's name and note, the exact pin.
SECRETS = ["王小明", "13912345678", "139****5678", "东华里12号", "路灯坏了一个星期",
           "media/secret-photo.jpg", "李师傅", "张组长", "调度员", "换了新灯泡", "已清运"]


@dataclass
class Filed:
    lamp: str  # open, in G1, with a pin near 东华小学
    bin: str  # closed, in G2
    merged: str  # merged into lamp: not shown
    lamp_item: str
    bin_class: str


async def file_cases(s: Services) -> Filed:
    items = [i for i in s.catalogue.items if i.level == "grid" and not i.urgent]
    lamp_item = items[0]
    bin_item = next(i for i in items if i.big_class != lamp_item.big_class)
    school = next(p for p in s.gazetteer.places if p.name == "东华小学")
    lamp = await s.cases.file(CaseDraft(
        text="我叫王小明，电话13912345678，东华小学门口的路灯坏了一个星期", address="东华里12号",
        item_code=lamp_item.code, grid_code=G1, lat=school.lat + 0.0004, lon=school.lon,
        media=["media/secret-photo.jpg"]), ReporterRef("http", "pm-1", phone="13912345678"))
    rubbish = await s.cases.file(CaseDraft(
        text="南庄村口垃圾桶满了，电话13912345678", item_code=bin_item.code, grid_code=G2,
        address="东华里12号"), ReporterRef("http", "pm-2", phone="13912345678"))
    again = await s.cases.file(CaseDraft(
        text="王小明又来反映路灯坏了一个星期", item_code=lamp_item.code, grid_code=G1),
        ReporterRef("http", "pm-3"))
    worker = await s.teams.add_worker("李师傅", "grid_worker", f"grid:{G2}", "t", "pm-w",
                                      s.cases.clock())
    leader = await s.teams.add_worker("张组长", "grid_leader", f"grid:{G2}", "t", "pm-l",
                                      s.cases.clock())
    await s.actions.resolve(rubbish.case.number, worker, "李师傅换了新灯泡，已清运")
    await s.actions.verify(rubbish.case.number, leader, fixed=True)
    dispatcher = await s.teams.add_worker("调度员", "dispatcher", "district:440604", "t",
                                          "pm-d", s.cases.clock())
    await s.actions.merge(again.case.number, lamp.case.number, dispatcher, "同一路灯")
    return Filed(lamp.case.number, rubbish.case.number, again.case.number, lamp_item.name,
                 bin_item.big_class)


async def _get(client: Any, path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status_code == status, path
    return (await response.get_data()).decode()


def _assert_private(html: str) -> None:
    for secret in SECRETS:
        assert secret not in html, secret
    assert "<script" not in html.lower()
    # No coordinates at all (the map is drawn in its own projected units).
    assert not re.search(r"\b(?:23|113)\.\d{3}", html)


async def test_public_map_lists_filters_and_hides_what_is_private(services: Services) -> None:
    s = services
    filed = await file_cases(s)
    client = create_app(s.config, s, background=False).test_client()

    response = await client.get("/")
    assert response.status_code == 200
    assert "script-src" not in response.headers["Content-Security-Policy"]  # none allowed
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    html = (await response.get_data()).decode()
    _assert_private(html)
    assert filed.lamp in html and filed.bin in html
    assert filed.merged not in html  # merged away: the case it joined is shown
    # The map: one shape per grid, counts on the two grids.
    shapes = re.findall(r'data-grid="(\d+)" data-count="(\d+)"', html)
    assert len(shapes) == len(s.grids.grids)
    counts = dict(shapes)
    assert counts[G1] == "1" and counts[G2] == "1"

    open_only = await _get(client, "/?state=open")
    assert filed.lamp in open_only and filed.bin not in open_only
    closed_only = await _get(client, "/?state=closed")
    assert filed.bin in closed_only and filed.lamp not in closed_only
    category = await _get(client, f"/?category={quote(filed.bin_class)}")
    assert filed.bin in category and filed.lamp not in category
    grid = await _get(client, f"/?grid={G1}")
    assert filed.lamp in grid and filed.bin not in grid and "东华社区第1网格" in grid
    # Unknown values are "no filter", never an error.
    assert filed.lamp in await _get(client, "/?state=bogus&category=&grid=")


async def test_case_page_in_public_words(services: Services) -> None:
    s = services
    filed = await file_cases(s)
    client = create_app(s.config, s, background=False).test_client()

    lamp = await _get(client, f"/cases/{filed.lamp}")
    _assert_private(lamp)
    assert filed.lamp_item in lamp
    # The place rounded: the grid and the landmark near the pin, never the address.
    assert "东华社区第1网格" in lamp and "东华小学附近" in lamp
    assert "已派遣至责任单位处理" in lamp or "市民反映问题" in lamp

    done = await _get(client, f"/cases/{filed.bin}")
    _assert_private(done)
    for phrase in ("已处置，等待核查", "核查通过", "已结案"):
        assert phrase in done
    assert "南庄村第1网格" in done and "东华小学" not in done  # no pin: the grid only

    await _get(client, f"/cases/{filed.merged}", 404)
    await _get(client, "/cases/NO-SUCH-CASE", 404)


async def test_a_case_closed_long_ago_leaves_the_map(services: Services) -> None:
    s = services
    filed = await file_cases(s)
    client = create_app(s.config, s, background=False).test_client()
    later = s.cases.clock() + timedelta(days=31)
    s.cases.clock = lambda: later  # type: ignore[method-assign]
    assert filed.bin not in await _get(client, "/")
    await _get(client, f"/cases/{filed.bin}", 404)
    assert filed.lamp in await _get(client, "/")  # still open: still shown
