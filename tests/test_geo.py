"""Coordinates, grids and the gazetteer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import Point, shape

from bot.config import PROJECT_ROOT
from bot.coords import gcj02_to_wgs84, to_wgs84, wgs84_to_gcj02
from bot.grids import LEVELS, GridMap, GridsError, load_geojson, parse_feature_collection
from bot.locator import Locator
from nlp.places import Gazetteer, cn_to_int, load_gazetteer

GRIDS_FILE = PROJECT_ROOT / "data/demo/grids.geojson"
AREAS = load_geojson(GRIDS_FILE)
GRIDS = GridMap(AREAS)
GAZETTEER = Gazetteer(load_gazetteer(PROJECT_ROOT / "data/demo/gazetteer.csv"))
LOCATOR = Locator(GRIDS, GAZETTEER)


# -- GCJ-02 --------------------------------------------------------------------------------

def test_gcj02_matches_published_reference_values() -> None:
    # Beijing (Tiananmen), as published by several independent coordtransform ports.
    assert wgs84_to_gcj02(39.915, 116.404) == pytest.approx(
        (39.91640428150164, 116.41024449916938), abs=1e-9)
    # Their inverse is the one-step approximation (error ~1 m); ours iterates to exact.
    assert gcj02_to_wgs84(39.915, 116.404) == pytest.approx(
        (39.91359571849836, 116.39775550083061), abs=2e-5)


def test_gcj02_round_trip_is_within_a_centimetre() -> None:
    for lat, lon in [(23.0215, 113.1214), (39.915, 116.404), (22.5, 114.05)]:
        back = gcj02_to_wgs84(*wgs84_to_gcj02(lat, lon))
        assert back == pytest.approx((lat, lon), abs=1e-7)


def test_outside_china_is_unchanged_and_bad_datum_refused() -> None:
    assert wgs84_to_gcj02(35.69, 139.69) == (35.69, 139.69)
    with pytest.raises(ValueError, match="bd09"):
        to_wgs84(23.0, 113.0, "bd09")


# -- grids ---------------------------------------------------------------------------------

def test_demo_district_has_five_levels_and_enough_grids() -> None:
    levels = {lv: [a for a in AREAS if a.level == lv] for lv in LEVELS}
    assert all(levels[lv] for lv in LEVELS)
    assert len(levels["grid"]) >= 60
    district = levels["district"][0]
    km2 = district.geometry.area * 111.32**2 * 0.9203  # cos(23°)
    assert 140 <= km2 <= 165
    for grid in levels["grid"]:
        assert grid.leader and grid.properties["workers"] and grid.group_chat
        chain = [a.level for a in GRIDS.ancestors(grid.code)]
        assert chain == ["grid", "community", "area", "street", "district"]


def test_locate_demo_point_and_gcj02_input() -> None:
    grid = GRIDS.locate(23.0215, 113.1214)
    assert grid is not None and grid.name == "同济社区第3网格"
    assert GRIDS.locate(*wgs84_to_gcj02(23.0215, 113.1214), coord="gcj02") == grid
    assert GRIDS.at_level(grid.code, "street").name == "祖庙街道"


def test_outside_the_district_and_in_holes_is_no_grid() -> None:
    assert GRIDS.locate(39.915, 116.404) is None  # Beijing
    district = next(a for a in AREAS if a.level == "district")
    assert district.geometry.interiors, "the demo district has holes (park, river island)"
    for ring in district.geometry.interiors:
        inside = shape({"type": "Polygon", "coordinates": [list(ring.coords)]})
        point = inside.representative_point()
        assert GRIDS.locate(point.y, point.x) is None


def test_a_point_on_a_shared_border_belongs_to_the_lowest_code() -> None:
    grids = GRIDS.grids
    for a in grids:
        for b in grids:
            if a.code < b.code and a.geometry.touches(b.geometry):
                shared = a.geometry.intersection(b.geometry)
                if shared.length > 0:
                    point = shared.interpolate(0.5, normalized=True)
                    assert GRIDS.locate(point.y, point.x).code == a.code
                    return
    pytest.fail("no two grids share a border")


def test_feature_collection_is_geojson_with_the_hierarchy() -> None:
    fc = GRIDS.feature_collection()
    assert fc["type"] == "FeatureCollection"
    props = fc["features"][0]["properties"]
    assert set(props) == {"code", "name", "level", "parent"}
    json.dumps(fc)  # serialisable


@pytest.mark.parametrize(("data", "message"), [
    ({"type": "Feature"}, "FeatureCollection"),
    ({"type": "FeatureCollection", "features": [{"properties": {"code": "1", "name": "x",
      "level": "grid"}, "geometry": {"type": "Point", "coordinates": [113, 23]}}]},
     "Polygon"),
    ({"type": "FeatureCollection", "features": [{"properties": {"code": "1", "name": "x",
      "level": "block"}, "geometry": None}]}, "level 'block'"),
    ({"type": "FeatureCollection", "features": [{"properties": {"code": "1", "name": "x",
      "level": "grid", "parent": "9"}, "geometry": {"type": "Polygon", "coordinates":
      [[[113, 23], [113.1, 23], [113.1, 23.1], [113, 23]]]}}]}, "parent 9"),
])
def test_bad_grid_files_are_explained(data: dict, message: str) -> None:
    with pytest.raises(GridsError, match=message):
        parse_feature_collection(data)


def test_bad_grid_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "g.geojson"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(GridsError, match="not JSON"):
        load_geojson(path)


# -- gazetteer -----------------------------------------------------------------------------

def test_gazetteer_is_big_enough_and_consistent() -> None:
    assert len(GAZETTEER.places) >= 300
    kinds = {p.kind for p in GAZETTEER.places}
    assert {"address", "compound", "school", "market"} <= kinds
    for place in GAZETTEER.places[::25]:
        grid = GRIDS.get(place.grid)
        assert grid is not None and grid.geometry.contains(Point(place.lon, place.lat))


def test_exact_address_and_chinese_numerals() -> None:
    for said in ("季华五路18号", "季华五路十八号门口", "在季华五路18号旁边"):
        located = LOCATOR.from_text(said)
        assert located.status == "found", said
        assert located.spot.address == "季华五路18号"
        assert located.spot.grid.name == "澜石社区第1网格"
    assert cn_to_int("一百零八") == 108 and cn_to_int("十八") == 18 and cn_to_int("二十") == 20


def test_unknown_house_number_is_interpolated_along_the_road() -> None:
    numbered = sorted(
        (int(p.name[4:-1]), p) for p in GAZETTEER.places
        if p.name.startswith("季华五路") and p.name.endswith("号") and p.name[4:-1].isdigit()
    )
    (n1, p1), (n2, p2) = numbered[0], numbered[1]
    if n2 - n1 < 2:
        pytest.skip("no gap between the first two numbers")
    wanted = n1 + 1
    located = LOCATOR.from_text(f"季华五路{wanted}号")
    assert located.status in ("found", "outside")
    matches = GAZETTEER.find(f"季华五路{wanted}号")
    lat = matches[0].place.lat
    assert min(p1.lat, p2.lat) - 1e-6 <= lat <= max(p1.lat, p2.lat) + 1e-6


def test_compound_alias_and_typo() -> None:
    compound = next(p for p in GAZETTEER.places if p.kind == "compound" and len(p.name) >= 4)
    assert LOCATOR.from_text(f"{compound.name}里面").spot.grid.code == compound.grid
    typo = compound.name[:-1] + ("园" if compound.name[-1] != "园" else "苑")
    located = LOCATOR.from_text(f"就在{typo}门口")
    assert located.status in ("found", "none")  # fuzzy match may or may not reach the cut


def test_fuzzy_prefilter_finds_what_scoring_every_name_finds() -> None:
    """The character-pair prefilter skips names only when they cannot reach the cut-off:
    the matches equal those of scoring the text against every name."""
    import random

    from rapidfuzz import fuzz, process

    from nlp.places import FUZZY_CUTOFF

    rng = random.Random(5)
    names = GAZETTEER._fuzzy_names
    texts = []
    for name in rng.sample(names, 150):
        k = rng.randrange(len(name))
        typo = name[:k] + rng.choice("园苑路街号村城东西") + name[k + 1:]
        texts += [f"我家在{typo}附近，路灯坏了很久", f"就在{typo}", name[:-1], f"位置：{name[1:]}"]
    found = 0
    for text in texts:
        everything = process.extract(text, names, scorer=fuzz.partial_ratio,
                                      score_cutoff=FUZZY_CUTOFF, limit=3) if len(text) >= 4 else []
        fast = GAZETTEER._fuzzy(text)
        assert [(m.matched, m.score) for m in fast] == [
            (name, score) for name, score, _ in everything
            for _place in GAZETTEER._names[name]], text
        found += bool(everything)
    assert found > 100  # the texts do exercise the fuzzy path


def test_road_alone_is_ambiguous_and_nonsense_is_none() -> None:
    located = LOCATOR.from_text("季华五路上")
    assert located.status == "ambiguous" and located.named == "季华五路"
    assert LOCATOR.from_text("火星基地").status == "none"
    assert LOCATOR.from_point(39.915, 116.404).status == "outside"


def test_a_pin_reads_as_its_label_and_the_nearest_named_place() -> None:
    place = GAZETTEER.places[0]
    spot = LOCATOR.from_point(place.lat, place.lon).spot
    assert spot is not None and spot.address == f"{place.name}附近"
    labelled = LOCATOR.from_point(place.lat, place.lon, label="  佛山市\n禅城区 ").spot
    assert labelled is not None and labelled.address == f"佛山市 禅城区（{place.name}附近）"
    named = LOCATOR.from_point(place.lat, place.lon, label=f"{place.name}东门").spot
    assert named is not None and named.address == f"{place.name}东门"
    # Far from every named place: the label alone, or nothing (the card then says so).
    assert LOCATOR.nearest(place.lat + 0.05, place.lon + 0.05) == ""
