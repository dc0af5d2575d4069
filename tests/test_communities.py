"""Communities (社区, 村) as places the locator knows: a text naming one locates to it (its
only grid, the grid the text's places pick inside it, else its main grid — said so), in the
chat dialog and from the mini-program's community QR entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shapely.geometry import Point, box, mapping

from adapters.testing import TestChannel
from bot.config import PROJECT_ROOT
from bot.grids import GridMap, load_geojson, parse_feature_collection
from bot.locator import Locator
from bot.services import Services
from bot.texts import t
from nlp.places import CommunityNames, Gazetteer, Place, community_names, load_gazetteer
from tests.fixtures.wechat.fake_api import FakeWeChat
from tests.test_telegram import Telegram, private_text, tg  # noqa: F401 (tg: a fixture)
from tests.test_wechat_mp import connect, login

GRIDS = GridMap(load_geojson(PROJECT_ROOT / "data/demo/grids.geojson"))
GAZETTEER = Gazetteer(load_gazetteer(PROJECT_ROOT / "data/demo/gazetteer.csv"))
LOCATOR = Locator(GRIDS, GAZETTEER)
DONGHUA = "4406040010101"  # 东华社区: grids 第1 and 第2


def _centre_grid(code: str) -> str:
    """The grid holding the community's centroid, worked out here from the polygons."""
    community = GRIDS.get(code)
    assert community is not None
    centroid = community.geometry.centroid
    assert community.geometry.contains(centroid)
    [grid] = [g for g in GRIDS.grids_in(code) if g.geometry.covers(centroid)]
    return grid.code


# -- the names ------------------------------------------------------------------------------

def test_how_people_name_a_community() -> None:
    assert community_names("东华社区") == ("东华社区", "东华社区居委会", "东华居委会", "东华居委")
    assert community_names("紫洞村") == ("紫洞村", "紫洞村居委会", "紫洞村委会", "紫洞村委")
    names = CommunityNames([("东华社区", "A"), ("东华社区", "B"), ("升平社区", "C")])
    found = names.find("我住在东华居委会旁边，升平社区那边也有")
    assert found is not None and found.matched == "东华居委会" and found.codes == ("A", "B")
    assert names.find("东华路上的路灯坏了") is None  # the bare stem is no community
    longest = names.find("东华社区居委会门口")
    assert longest is not None and longest.matched == "东华社区居委会"


def test_every_demo_community_is_known_with_its_grids() -> None:
    communities = GRIDS.communities()
    assert len(communities) == 36
    for community in communities:
        grids = GRIDS.grids_in(community.code)
        assert grids and all(GRIDS.at_level(g.code, "community") == community for g in grids)
        centre = GRIDS.community_centre(community.code)
        assert centre is not None and centre.grid in grids and centre.grids == len(grids)
        assert centre.grid.geometry.covers(Point(centre.lon, centre.lat))
        assert community.geometry.covers(Point(centre.lon, centre.lat))
    assert GRIDS.community_centre("440604001030103") is None  # a grid is no community


# -- the locator on the demo district ---------------------------------------------------------

def test_a_text_naming_only_a_community_goes_to_its_main_grid_and_says_so() -> None:
    for said in ("东华社区门口的路灯坏了", "东华居委会旁边垃圾没人清"):
        located = LOCATOR.from_text(said)
        assert located.status == "found", said
        assert located.spot is not None and located.spot.grid.code == _centre_grid(DONGHUA)
        assert located.spot.address == t("place.community_centre", community="东华社区")
        assert "未说具体位置" in located.spot.address  # the citizen reads it at 确认
    village = LOCATOR.from_text("紫洞村委会门口的井盖坏了")
    assert village.status == "found" and village.spot is not None
    assert village.spot.address.startswith("紫洞村（")
    assert GRIDS.at_level(village.spot.grid.code, "community").name == "紫洞村"  # type: ignore[union-attr]


def test_a_place_named_inside_the_community_picks_its_grid() -> None:
    centre = _centre_grid(DONGHUA)
    school = next(p for p in GAZETTEER.places if p.name == "东华小学")
    school_grid = GRIDS.locate(school.lat, school.lon)
    assert school_grid is not None and school_grid.code != centre  # a real difference
    located = LOCATOR.from_text("东华社区东华小学门口的井盖坏了")
    assert located.status == "found" and located.spot is not None
    assert located.spot.grid.code == school_grid.code and located.spot.address == "东华小学"


def test_a_grid_named_in_full_is_that_grid() -> None:
    grids = GRIDS.grids_in(DONGHUA)
    other = next(g for g in grids if g.code != _centre_grid(DONGHUA))
    located = LOCATOR.from_text(f"{other.name}的路灯坏了")
    assert located.status == "found" and located.spot is not None
    assert located.spot.grid == other and located.spot.address == other.name
    assert other.geometry.covers(Point(located.spot.lon, located.spot.lat))
    # A place named in that grid is still the more precise answer.
    school = next(p for p in GAZETTEER.places if p.name == "东华小学")
    school_grid = GRIDS.locate(school.lat, school.lon)
    assert school_grid is not None
    inside = LOCATOR.from_text(f"{school_grid.name}东华小学门口")
    assert inside.spot is not None and inside.spot.address == "东华小学"


def test_a_place_outside_the_named_community_does_not_move_the_report_out_of_it() -> None:
    # 季华五路18号 is in 澜石社区: with 东华社区 named, the community is the certain part.
    assert LOCATOR.from_text("季华五路18号路灯不亮").spot.grid.name == "澜石社区第1网格"  # type: ignore[union-attr]
    located = LOCATOR.from_text("东华社区季华五路18号路灯不亮")
    assert located.status == "found" and located.spot is not None
    assert located.spot.grid.code == _centre_grid(DONGHUA)
    inside = LOCATOR.from_text("澜石社区季华五路18号路灯不亮")
    assert inside.spot is not None and inside.spot.address == "季华五路18号"


def test_texts_without_a_community_locate_as_before() -> None:
    assert LOCATOR.from_text("季华五路上").status == "ambiguous"
    assert LOCATOR.from_text("火星基地").status == "none"


# -- a small city of its own: one-grid communities, a main grid, twin names ------------------

def _square(x: float, y: float, size: float = 0.01) -> dict[str, Any]:
    return mapping(box(x, y, x + size, y + size))


def _feature(code: str, name: str, level: str, parent: str | None, geometry: dict[str, Any],
             **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry,
            "properties": {"code": code, "name": name, "level": level, "parent": parent,
                           **props}}


def _small_city() -> Locator:
    features = [
        _feature("D", "测试区", "district", None, _square(113.0, 23.0, 0.04)),
        _feature("S1", "一街道", "street", "D", _square(113.0, 23.0, 0.02)),
        _feature("S2", "二街道", "street", "D", _square(113.02, 23.0, 0.02)),
        # 莲花社区: one grid.
        _feature("C1", "莲花社区", "community", "S1", _square(113.0, 23.0)),
        _feature("C1G1", "莲花社区第1网格", "grid", "C1", _square(113.0, 23.0)),
        # 荷塘社区: two grids side by side; the grid file names the second its main grid.
        _feature("C2", "荷塘社区", "community", "S1", mapping(box(113.01, 23.0, 113.03, 23.01)),
                 main_grid="C2G2"),
        _feature("C2G1", "荷塘社区第1网格", "grid", "C2", _square(113.01, 23.0)),
        _feature("C2G2", "荷塘社区第2网格", "grid", "C2", _square(113.02, 23.0)),
        # Another street's 新村 and a second 新村 of the same name.
        _feature("C3", "新村", "community", "S2", _square(113.02, 23.01)),
        _feature("C3G1", "新村第1网格", "grid", "C3", _square(113.02, 23.01)),
        _feature("C4", "新村", "community", "S2", _square(113.03, 23.01)),
        _feature("C4G1", "新村第1网格", "grid", "C4", _square(113.03, 23.01)),
    ]
    grids = GridMap(parse_feature_collection({"type": "FeatureCollection",
                                              "features": features}))
    places = [Place("莲花", "landmark", 23.002, 113.002, ""),  # a spot in 莲花社区
              Place("荷塘小学", "school", 23.005, 113.015, "")]
    return Locator(grids, Gazetteer(places))


def test_a_one_grid_community_is_certain_and_named_plainly() -> None:
    located = _small_city().from_text("莲花社区门口的路灯坏了")
    assert located.status == "found" and located.spot is not None
    assert located.spot.grid.code == "C1G1" and located.spot.address == "莲花社区"
    # Its own name is no other place: 莲花 (a landmark elsewhere) is not what was meant.
    assert located.named == "莲花社区"


def test_the_grid_file_may_name_a_community_main_grid() -> None:
    city = _small_city()
    located = city.from_text("荷塘社区有人乱倒垃圾")
    assert located.spot is not None and located.spot.grid.code == "C2G2"
    assert located.spot.address == t("place.community_centre", community="荷塘社区")
    # A place in the text picks the grid instead.
    school = city.from_text("荷塘社区荷塘小学门口有人乱倒垃圾")
    assert school.spot is not None and school.spot.grid.code == "C2G1"


def test_twin_community_names_are_asked_about_and_codes_locate_directly() -> None:
    city = _small_city()
    located = city.from_text("新村村委会门口积水")
    assert located.status == "ambiguous"
    assert sorted(c.grid.code for c in located.choices) == ["C3G1", "C4G1"]
    by_code = city.from_community("C4")
    assert by_code.status == "found" and by_code.spot is not None
    assert by_code.spot.grid.code == "C4G1"
    assert city.from_community("NOPE").status == "none"


# -- the chat dialog, on both storages --------------------------------------------------------

async def test_a_chat_report_naming_only_its_community_is_filed_there(
        services: Services) -> None:
    chat = TestChannel(services, "telegram")
    out = await chat.send("tg-1", "东华社区门口的路灯坏了，晚上一片黑")
    text = out.replies[-1].text
    if "回复序号" in text:  # the model was unsure: the first suggestion
        text = await chat.say("tg-1", "1")
    assert "请确认" in text and "问题在哪里" not in text, text
    assert "东华社区（未说具体位置" in text  # what the citizen may correct
    filed = await chat.say("tg-1", "确认")
    assert "案件编号" in filed
    [case] = await services.cases.list()
    assert case.grid_code == _centre_grid(DONGHUA)
    assert case.address.startswith("东华社区（")


async def test_over_real_telegram_a_text_naming_only_a_community_is_located(
        tg: Telegram) -> None:  # noqa: F811
    """Through the Telegram adapter (python-telegram-bot against the fake Bot API)."""
    said = await tg.say(private_text("东华居委会门口的路灯坏了，晚上一片黑"))
    if "回复序号" in said:
        said = await tg.say(private_text("1"))
    assert "请确认" in said and "东华社区（未说具体位置" in said, said
    assert GRIDS.get(_centre_grid(DONGHUA)).name in said  # type: ignore[union-attr]
    assert "案件编号" in await tg.say(private_text("确认"))
    [case] = await tg.services.cases.list()
    assert case.grid_code == _centre_grid(DONGHUA)


async def test_a_chat_correction_after_a_community_guess(services: Services) -> None:
    chat = TestChannel(services, "wechat")
    out = await chat.send("wx-1", "东华社区门口的路灯坏了，晚上一片黑")
    if "回复序号" in out.replies[-1].text:
        await chat.say("wx-1", "1")
    school = next(p for p in GAZETTEER.places if p.name == "东华小学")
    text = await chat.say("wx-1", location=(school.lat, school.lon))
    assert "请确认" in text and "东华社区第1网格" in text
    await chat.say("wx-1", "确认")
    [case] = await services.cases.list()
    assert case.grid_code == GRIDS.locate(school.lat, school.lon).code  # type: ignore[union-attr]


# -- the mini-program's community QR entry, on both storages ----------------------------------

async def _report(client: Any, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await client.post("/api/mp/reports", headers=auth, json=body)
    assert r.status_code == 200, await r.get_data(as_text=True)
    answer = await r.get_json()
    if answer["step"] == "choose_item":
        r = await client.post("/api/mp/reports/reply", headers=auth, json={"text": "1"})
        answer = await r.get_json()
    return answer


async def test_a_report_from_the_community_code_is_located_without_a_pin(
        services: Services, fake_api: FakeWeChat, tmp_path: Path) -> None:
    client = await connect(services, fake_api, tmp_path)
    auth = await login(client, "code-community")
    answer = await _report(client, auth, text="门口的路灯坏了，晚上一片黑", community=DONGHUA)
    assert answer["step"] == "confirm", answer
    said = answer["replies"][-1]["text"]
    assert "东华社区（未说具体位置" in said
    assert GRIDS.get(_centre_grid(DONGHUA)).name in said  # type: ignore[union-attr]
    # The map the QR entry opens is centred where such a report goes.
    r = await client.get(f"/api/mp/communities/{DONGHUA}", headers=auth)
    centre = (await r.get_json())["center"]
    assert GRIDS.locate(centre["lat"], centre["lon"], "gcj02").code == _centre_grid(DONGHUA)  # type: ignore[union-attr]

    # Words naming a place in the community pick its grid.
    answer = await _report(client, auth, text="东华小学门口的路灯坏了", community=DONGHUA,
                           confirm=True)
    assert answer["case"] is not None, answer
    school = next(p for p in GAZETTEER.places if p.name == "东华小学")
    assert answer["case"]["grid"]["code"] == GRIDS.locate(school.lat, school.lon).code  # type: ignore[union-attr]
    # Words naming a place elsewhere on their own are not pulled into the scanned community.
    answer = await _report(client, auth, text="季华五路18号路灯不亮", community=DONGHUA,
                           confirm=True)
    assert answer["case"] is not None and answer["case"]["grid"]["name"] == "澜石社区第1网格"
    # An unknown scene locates nothing: the dialog asks where.
    answer = await _report(client, auth, text="门口的路灯坏了，晚上一片黑", community="NOPE")
    assert answer["step"] == "await_location"
