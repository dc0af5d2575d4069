#!/usr/bin/env python3
"""Generate the Chancheng (禅城区, Foshan) demo district for gridbot.

Writes two files into ``data/demo/`` (or ``--out-dir``):

* ``grids.geojson`` - the 5-level hierarchy district → street → area →
  community → grid as WGS-84 polygons that tile their parents exactly;
* ``gazetteer.csv`` - named places (addresses, compounds, schools, markets,
  landmarks, road junctions), each strictly inside the grid it names.

Road names and landmarks loosely follow the real map; people, compounds and
all geometry are fictional. The output is deterministic: a fixed seed and a
fixed processing order give byte-identical files on every run.

Needs only the standard library and shapely 2::

    python scripts/make_demo_district.py [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import shapely
from shapely.geometry import LineString, Point, Polygon, mapping
from shapely.geometry.polygon import orient

SEED = 440604
DISTRICT_CODE = "440604"
DISTRICT_NAME = "禅城区"
DEMO_POINT = (23.0215, 113.1214)  # (lat, lon) used by the project's demo

# Local equirectangular projection around the district centre. It is affine,
# so straight cuts made in metres stay straight in lon/lat.
LON0, LAT0 = 113.11, 23.02
KM_PER_DEG = 111.32
M_PER_DEG_LAT = KM_PER_DEG * 1000.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(LAT0))

GRID_SIZE = 1e-6  # output precision in degrees (6 decimals)
POINT_MARGIN_M = 20.0  # validation demands 15 m; keep some slack
POINT_SPACING_M = 20.0  # no two gazetteer entries closer than this
HOUSE_SPACING_M = 10.0  # along-road distance between consecutive numbers

Coord = tuple[float, float]
G = TypeVar("G", bound=shapely.Geometry)

# --------------------------------------------------------------------------
# Static description of the district
# --------------------------------------------------------------------------

# District outline (lon, lat), counter-clockwise. A rough, irregular stand-in
# for the real boundary: 东平河 along the south, 汾江 along the north.
OUTLINE: list[Coord] = [
    (113.0200, 22.9650),
    (113.0600, 22.9580),
    (113.1000, 22.9620),
    (113.1350, 22.9680),
    (113.1600, 22.9820),
    (113.1630, 23.0100),
    (113.1550, 23.0400),
    (113.1400, 23.0620),
    (113.1180, 23.0720),
    (113.0900, 23.0760),
    (113.0600, 23.0720),
    (113.0400, 23.0600),
    (113.0300, 23.0350),
    (113.0180, 23.0050),
]


@dataclass(frozen=True)
class HoleSpec:
    """A park, hill or river island that belongs to no grid."""

    name: str
    centre: Coord  # lon, lat
    semi_axes_m: Coord  # along / across the heading
    heading_deg: float  # rotation of the long axis, counter-clockwise from east
    wobble: tuple[float, ...]  # per-vertex radius factors, so it is not an ellipse


HOLES: list[HoleSpec] = [
    HoleSpec(
        "亚艺公园",
        (113.1360, 23.0025),
        (420.0, 380.0),
        20.0,
        (1.0, 0.92, 1.05, 0.97, 0.88, 1.02, 0.95, 1.08, 0.9, 1.0),
    ),
    HoleSpec(
        "东平河沙洲",
        (113.0600, 22.9705),
        (1000.0, 160.0),
        8.0,
        (1.0, 0.95, 0.85, 0.9, 1.0, 0.97, 0.88, 0.92),
    ),
    HoleSpec(
        "王借岗",
        (113.0600, 23.0470),
        (520.0, 450.0),
        -30.0,
        (1.0, 0.9, 1.08, 0.95, 1.0, 0.86, 1.04, 0.93, 0.98),
    ),
]

# Street boundaries as directed lines (lon, lat). L1 separates north from
# south; L2 and L3 split the north and south halves west/east.
STREET_CUT_NS = ((113.00, 23.0150), (113.20, 23.0110))
STREET_CUT_NORTH = ((113.0920, 23.00), (113.0990, 23.09))
STREET_CUT_SOUTH = ((113.0870, 22.94), (113.0960, 23.03))


@dataclass(frozen=True)
class StreetSpec:
    name: str
    areas: list[tuple[str, list[str]]]  # (area name, community names)


STREETS: dict[str, StreetSpec] = {
    "zumiao": StreetSpec(
        "祖庙街道",
        [
            ("东华片区", ["东华社区", "升平社区", "兆祥社区"]),
            ("普君片区", ["普君社区", "文华社区", "铁军社区", "朝安社区"]),
            ("同济片区", ["同济社区", "岭南社区", "莲花社区"]),
        ],
    ),
    "zhangcha": StreetSpec(
        "张槎街道",
        [
            ("大富片区", ["大富社区", "上朗社区", "下朗社区", "古灶社区"]),
            ("莲塘片区", ["莲塘社区", "弼塘社区", "海口社区"]),
        ],
    ),
    "shiwan": StreetSpec(
        "石湾镇街道",
        [
            ("东风片区", ["东风社区", "红星社区", "镇中社区"]),
            ("澜石片区", ["澜石社区", "石头社区", "深村社区"]),
            ("江湾片区", ["江湾社区", "湾华社区", "绿景社区", "东平社区"]),
        ],
    ),
    "nanzhuang": StreetSpec(
        "南庄镇",
        [
            ("紫洞片区", ["紫洞村", "杏头村", "罗南村"]),
            ("吉利片区", ["吉利村", "龙津村", "堤田村"]),
            ("罗格片区", ["罗格村", "溶洲村", "南庄村"]),
        ],
    ),
}
STREET_ORDER = ["zumiao", "zhangcha", "shiwan", "nanzhuang"]  # code order 001..004

# Roads as straight segments (lon, lat); house numbers grow from start to end.
# Segments of one real road share a ``line`` so they are not "junctions".
ROADS: list[tuple[str, str, Coord, Coord]] = [
    # name, line, start, end
    ("季华一路", "季华", (113.0240, 23.00656), (113.0600, 23.00759)),
    ("季华二路", "季华", (113.0600, 23.00759), (113.0850, 23.00830)),
    ("季华三路", "季华", (113.0850, 23.00830), (113.1000, 23.00873)),
    ("季华四路", "季华", (113.1000, 23.00873), (113.1130, 23.00910)),
    ("季华五路", "季华", (113.1130, 23.00910), (113.1380, 23.00981)),
    ("季华六路", "季华", (113.1380, 23.00981), (113.1580, 23.01039)),
    ("魁奇二路", "魁奇", (113.0500, 22.99300), (113.1000, 22.99400)),
    ("魁奇一路", "魁奇", (113.1000, 22.99400), (113.1500, 22.99500)),
    ("张槎一路", "张槎一路", (113.0360, 23.05600), (113.0900, 23.05750)),
    ("莲花路", "莲花路", (113.1010, 23.04700), (113.1340, 23.04800)),
    ("建新路", "建新路", (113.1030, 23.04350), (113.1330, 23.04420)),
    ("人民路", "人民路", (113.1000, 23.03850), (113.1300, 23.03900)),
    ("城门头路", "城门头路", (113.0980, 23.03300), (113.1200, 23.03340)),
    ("卫国路", "卫国路", (113.1080, 23.02900), (113.1400, 23.02960)),
    ("同济路", "同济路", (113.1000, 23.02450), (113.1480, 23.02530)),
    ("绿景路", "绿景路", (113.0950, 23.01850), (113.1500, 23.01920)),
    ("石湾公园路", "石湾公园路", (113.0980, 22.99900), (113.1180, 22.99940)),
    ("东平路", "东平路", (113.0980, 22.98050), (113.1500, 22.98150)),
    ("南庄大道", "南庄大道", (113.0280, 22.97900), (113.0840, 22.98300)),
    ("禅港路", "禅港路", (113.0420, 22.96600), (113.0460, 23.04000)),
    ("张槎路", "张槎路", (113.0680, 23.02000), (113.0720, 23.07000)),
    ("佛山大道中", "佛山大道", (113.0900, 23.07200), (113.0830, 22.96400)),
    ("岭南大道北", "岭南大道", (113.1045, 23.01300), (113.1050, 23.06200)),
    ("华远东路", "华远东路", (113.1085, 23.03000), (113.1090, 23.04200)),
    ("朝安路", "朝安路", (113.1100, 23.04500), (113.1110, 23.06600)),
    ("祖庙路", "祖庙路", (113.1125, 23.02600), (113.1130, 23.04000)),
    ("亲仁路", "亲仁路", (113.1150, 23.03400), (113.1155, 23.04400)),
    ("影荫路", "影荫路", (113.1168, 23.02800), (113.1172, 23.03600)),
    ("汾江中路", "汾江", (113.1180, 23.05800), (113.1185, 23.01700)),
    ("汾江南路", "汾江", (113.1185, 23.01700), (113.1190, 22.98400)),
    ("普君北路", "普君北路", (113.1225, 23.03600), (113.1230, 23.05200)),
    ("文华北路", "文华", (113.1275, 23.06200), (113.1278, 23.03100)),
    ("文华中路", "文华", (113.1278, 23.03100), (113.1280, 23.01250)),
    ("文华南路", "文华", (113.1280, 23.01250), (113.1283, 22.98500)),
    ("江湾一路", "江湾一路", (113.1450, 22.97800), (113.1440, 23.02800)),
    ("南海大道", "南海大道", (113.1540, 22.98800), (113.1500, 23.03500)),
]
REQUIRED_ADDRESS = ("季华五路", 18)
REQUIRED_ADDRESS_STREETS = {"zumiao", "shiwan"}
REQUIRED_JUNCTION = "季华五路与文华南路交叉口"

# Real landmark names at approximate positions: (name, lat, lon, aliases).
LANDMARKS: list[tuple[str, float, float, list[str]]] = [
    ("祖庙", 23.0345, 113.1115, ["佛山祖庙", "祖庙博物馆"]),
    ("岭南天地", 23.0365, 113.1150, ["岭南天地商业街"]),
    ("佛山火车站", 23.0490, 113.1080, ["佛山站", "佛山火车站广场"]),
    ("梁园", 23.0405, 113.1175, []),
    ("佛山公园", 23.0420, 113.1235, []),
    ("中山公园", 23.0505, 113.1160, ["佛山中山公园"]),
    ("兆祥黄公祠", 23.0385, 113.1125, ["黄公祠"]),
    ("东方广场", 23.0300, 113.1160, []),
    ("佛山市第一人民医院", 23.0335, 113.1265, ["市一医院", "佛山一医"]),
    ("祖庙街道办事处", 23.0300, 113.1210, ["祖庙街道办"]),
    ("禅城区人民政府", 23.0150, 113.1240, ["禅城区政府"]),
    ("季华公园", 23.0060, 113.1200, []),
    ("佛山创意产业园", 23.0180, 113.1010, ["创意产业园"]),
    ("南风古灶", 23.0010, 113.1040, ["南风古灶旅游区"]),
    ("石湾公园", 22.9960, 113.1090, []),
    ("石湾镇街道办事处", 23.0000, 113.1200, ["石湾街道办"]),
    ("亚艺公园南门", 22.9975, 113.1360, ["亚艺公园"]),
    ("佛山世纪莲体育中心", 22.9840, 113.1300, ["世纪莲", "世纪莲体育中心"]),
    ("佛山科学技术学院", 22.9880, 113.1420, ["佛科院"]),
    ("张槎街道办事处", 23.0440, 113.0780, ["张槎街道办"]),
    ("王借岗公园东门", 23.0470, 113.0675, ["王借岗"]),
    ("绿岛湖", 22.9950, 113.0480, ["绿岛湖公园"]),
    ("华夏陶瓷博览城", 22.9870, 113.0350, ["陶瓷博览城"]),
    ("南庄镇人民政府", 22.9830, 113.0620, ["南庄镇政府"]),
    ("东平河沙洲观景台", 22.9650, 113.0600, ["沙洲观景台"]),
]


def words(text: str) -> list[str]:
    """Split a space-separated table; keeps long name lists compact."""
    return text.split()


# Name parts for fictional compounds and people.
COMPOUND_PREFIXES = words(
    "绿景 金域 东华里 翠湖 锦绣 明珠 嘉福 华信 怡翠 丽日 金沙 颐景 "
    "汇景 泰和 荣华 宝华 雅逸 银湖 碧水 东湖 南湾 江景 君悦 鸿福 "
    "聚龙 凯旋 海逸 新都 星辰 晴川 兰亭 桂香 紫荆 云台 天悦 瑞祥 "
    "和景 福盈 景湖 丰泽 康乐 安华 永安 嘉信 华盛 金茂 碧云 玉兰 "
    "松涛 青枫 朝晖 尚品 盈翠 裕华 文昌 德馨 恒福 万和 美景 怡和 "
    "润景 逸林 翠竹 春晖 百合 金桂 祥和 碧湾 华府 澜湾 汇丰 东逸 "
    "南苑 荔景 丹桂 榕荫 锦华 宏景 悦江 雍景 亲水 翠林 金湾 御江 "
    "凤鸣 星河 泓景 秀水 明月 荷塘 新桥 惠景 嘉园 蓝湾 瑞景 禾田 "
    "静雅 博雅 海韵 鹏程 合德 融和 仁和 宁馨 长青 翰林 芳华 如意 "
    "富华 兴隆"
)
COMPOUND_SUFFIXES = words("花园 华庭 名苑 小区 雅居 新村 豪庭 公馆 山庄 雅苑 花城 轩 名都 家园")
SURNAMES = "陈陈陈梁梁黄黄李李何冯林罗区霍潘麦邓吴张周谭卢苏关伍叶简郭钟杨刘莫朱余"
GIVEN_CHARS = (
    "伟芳敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰德志坚建国文辉婷雪嘉"
    "浩宇俊杰欣怡颖琳晓峰海燕永健淑贞润发锦荣宝珠惠玲丹凤耀祖家豪子轩泳诗"
)


# --------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------


def to_metric(geom: G) -> G:
    """lon/lat → local metres (east, north)."""
    return shapely.transform(geom, lambda c: (c - (LON0, LAT0)) * (M_PER_DEG_LON, M_PER_DEG_LAT))


def to_lonlat(geom: G) -> G:
    """Local metres → lon/lat."""
    return shapely.transform(geom, lambda c: c / (M_PER_DEG_LON, M_PER_DEG_LAT) + (LON0, LAT0))


def metric_xy(lon: float, lat: float) -> Coord:
    return ((lon - LON0) * M_PER_DEG_LON, (lat - LAT0) * M_PER_DEG_LAT)


def round6(geom: G) -> G:
    """Round to 6 decimals; a pure function of each double, so shared
    vertices stay shared."""
    return shapely.transform(geom, lambda c: c.round(6))


def area_km2(geom: shapely.Geometry) -> float:
    """Equal-area approximation used across the project: deg² scaled by
    111.32 km, times cos(lat) in longitude."""
    lat = geom.centroid.y
    return geom.area * KM_PER_DEG * KM_PER_DEG * math.cos(math.radians(lat))


def left_halfplane(p1: Coord, p2: Coord) -> Polygon:
    """A huge polygon covering everything left of the directed line p1→p2."""
    big = 1e6
    dx, dy = p2[0] - p1[0], p2[1] - p1[1]
    n = math.hypot(dx, dy)
    dx, dy = dx / n, dy / n
    lx, ly = -dy, dx
    a = (p1[0] - dx * big, p1[1] - dy * big)
    b = (p1[0] + dx * big, p1[1] + dy * big)
    return Polygon([a, b, (b[0] + lx * big, b[1] + ly * big), (a[0] + lx * big, a[1] + ly * big)])


def cut(poly: Polygon, p1: Coord, p2: Coord) -> tuple[shapely.Geometry, shapely.Geometry]:
    """Split along the straight line p1→p2: (left part, right part)."""
    half = left_halfplane(p1, p2)
    return poly.intersection(half), poly.difference(half)


def compactness(poly: Polygon) -> float:
    """Isoperimetric ratio of the outer ring: 1 for a disc, small for
    slivers. Holes are ignored so a grid around a park is not penalised."""
    shell = Polygon(poly.exterior)
    return 4.0 * math.pi * shell.area / (shell.length**2)


def hole_polygon(spec: HoleSpec) -> Polygon:
    """Irregular ellipse-like ring in metres."""
    cx, cy = metric_xy(*spec.centre)
    a, b = spec.semi_axes_m
    rot = math.radians(spec.heading_deg)
    pts = []
    n = len(spec.wobble)
    for i, w in enumerate(spec.wobble):
        t = 2.0 * math.pi * i / n
        x, y = a * w * math.cos(t), b * w * math.sin(t)
        pts.append(
            (cx + x * math.cos(rot) - y * math.sin(rot), cy + x * math.sin(rot) + y * math.cos(rot))
        )
    return Polygon(pts)


def split_weighted(poly: Polygon, weights: Sequence[float], rng: random.Random) -> list[Polygon]:
    """Recursively split ``poly`` with straight cuts into len(weights) single
    polygons whose areas follow ``weights``.

    Each cut runs across the piece's long axis with a small random tilt, and
    its offset is found by bisection on area. Cuts that would leave a
    multi-part or sliver piece are retried with another tilt.
    """
    if len(weights) == 1:
        return [poly]
    k1 = len(weights) // 2
    frac = sum(weights[:k1]) / sum(weights)
    rect = poly.minimum_rotated_rectangle.exterior.coords
    e1 = (rect[1][0] - rect[0][0], rect[1][1] - rect[0][1])
    e2 = (rect[2][0] - rect[1][0], rect[2][1] - rect[1][1])
    ex, ey = e1 if math.hypot(*e1) >= math.hypot(*e2) else e2
    # Orient the sweep west→east or north→south so child order reads naturally.
    if (abs(ex) >= abs(ey) and ex < 0) or (abs(ey) > abs(ex) and ey > 0):
        ex, ey = -ex, -ey
    base = math.atan2(ey, ex)
    xs = list(poly.exterior.coords)
    for attempt in range(160):
        # Prefer cuts across the long axis; fall back to the other axis and
        # then to any direction (needed next to holes and notches).
        if attempt < 40:
            ang, min_compact = base + rng.uniform(-0.3, 0.3), 0.3
        elif attempt < 80:
            ang, min_compact = base + math.pi / 2 + rng.uniform(-0.3, 0.3), 0.3
        else:
            ang, min_compact = rng.uniform(0.0, 2.0 * math.pi), 0.12
        ux, uy = math.cos(ang), math.sin(ang)
        proj = [x * ux + y * uy for x, y in xs]
        lo, hi = min(proj), max(proj)
        target = frac * poly.area
        a_part: shapely.Geometry = poly
        b_part: shapely.Geometry = poly
        for _ in range(60):
            t = (lo + hi) / 2.0
            c = (ux * t, uy * t)
            # Left of direction (-uy, ux) is the side where p·u < t.
            a_part, b_part = cut(poly, c, (c[0] - uy, c[1] + ux))
            if a_part.area < target:
                lo = t
            else:
                hi = t
        ok = all(
            isinstance(p, Polygon) and not p.is_empty and compactness(p) >= min_compact
            for p in (a_part, b_part)
        )
        if ok:
            assert isinstance(a_part, Polygon) and isinstance(b_part, Polygon)
            return split_weighted(a_part, weights[:k1], rng) + split_weighted(
                b_part, weights[k1:], rng
            )
    raise RuntimeError("could not find a clean straight cut")


# --------------------------------------------------------------------------
# Hierarchy
# --------------------------------------------------------------------------


@dataclass
class Unit:
    code: str
    name: str
    level: str
    parent: str | None
    geom: Polygon  # lon/lat once finalised; metres while cutting
    children: list[Unit] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)


class NameMaker:
    """Unique fictional Chinese personal names."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def __call__(self) -> str:
        while True:
            given = self.rng.choice(GIVEN_CHARS)
            if self.rng.random() < 0.8:
                given += self.rng.choice(GIVEN_CHARS)
            name = self.rng.choice(SURNAMES) + given
            if name not in self.used:
                self.used.add(name)
                return name


def street_pieces(district_m: Polygon) -> dict[str, Polygon]:
    def line(spec: tuple[Coord, Coord]) -> tuple[Coord, Coord]:
        return metric_xy(*spec[0]), metric_xy(*spec[1])

    north, south = cut(district_m, *line(STREET_CUT_NS))
    assert isinstance(north, Polygon) and isinstance(south, Polygon)
    zhangcha, zumiao = cut(north, *line(STREET_CUT_NORTH))
    nanzhuang, shiwan = cut(south, *line(STREET_CUT_SOUTH))
    pieces = {"zumiao": zumiao, "zhangcha": zhangcha, "shiwan": shiwan, "nanzhuang": nanzhuang}
    for key, p in pieces.items():
        assert isinstance(p, Polygon), key
    return pieces  # type: ignore[return-value]


def build_hierarchy(rng: random.Random, names: NameMaker) -> Unit:
    """Cut the district in metres; geometry is finalised later."""
    district_m = Polygon(
        to_metric(Polygon(OUTLINE)).exterior.coords,
        [hole_polygon(h).exterior.coords for h in HOLES],
    )
    assert district_m.is_valid
    district = Unit(DISTRICT_CODE, DISTRICT_NAME, "district", None, district_m)
    pieces = street_pieces(district_m)
    chat_id = 1001000000000
    for s_idx, key in enumerate(STREET_ORDER, start=1):
        spec = STREETS[key]
        street = Unit(
            f"{DISTRICT_CODE}{s_idx:03d}", spec.name, "street", district.code, pieces[key]
        )
        street.extra["key"] = key
        district.children.append(street)
        area_weights = [rng.uniform(0.8, 1.25) * len(c) for _, c in spec.areas]
        area_geoms = split_weighted(street.geom, area_weights, rng)
        for a_idx, ((a_name, communities), a_geom) in enumerate(
            zip(spec.areas, area_geoms, strict=True), start=1
        ):
            area = Unit(f"{street.code}{a_idx:02d}", a_name, "area", street.code, a_geom)
            street.children.append(area)
            grid_counts = [rng.choice((2, 3, 3, 4)) for _ in communities]
            c_geoms = split_weighted(
                a_geom, [n * rng.uniform(0.85, 1.15) for n in grid_counts], rng
            )
            for c_idx, (c_name, c_geom, n_grids) in enumerate(
                zip(communities, c_geoms, grid_counts, strict=True), start=1
            ):
                comm = Unit(f"{area.code}{c_idx:02d}", c_name, "community", area.code, c_geom)
                area.children.append(comm)
                g_geoms = split_weighted(
                    c_geom, [rng.uniform(0.8, 1.2) for _ in range(n_grids)], rng
                )
                for g_idx, g_geom in enumerate(g_geoms, start=1):
                    chat_id += 1
                    grid = Unit(
                        f"{comm.code}{g_idx:02d}",
                        f"{c_name}第{g_idx}网格",
                        "grid",
                        comm.code,
                        g_geom,
                    )
                    grid.extra = {
                        "leader": names(),
                        "workers": [names() for _ in range(rng.randint(2, 4))],
                        "group_chat": f"telegram:-{chat_id}",
                        "households": rng.randint(300, 600),
                    }
                    comm.children.append(grid)
    return district


def walk(unit: Unit) -> list[Unit]:
    out = [unit]
    for child in unit.children:
        out.extend(walk(child))
    return out


def finalise_geometry(district: Unit) -> None:
    """Move every unit to lon/lat on a 1e-6° lattice with exact shared borders.

    The cut pieces agree only to floating-point noise, and a cut ending on a
    neighbour's edge leaves a T-junction. Snap-rounding all grid borders
    together (unary_union with grid_size) nodes them consistently; the faces
    of that line network are the final grids. Parents are unions of their
    children, so they tile exactly by construction.
    """
    grids = [u for u in walk(district) if u.level == "grid"]
    float_ll = [to_lonlat(g.geom) for g in grids]
    lines = shapely.unary_union([g.boundary for g in float_ll], grid_size=GRID_SIZE)
    faces = list(shapely.get_parts(shapely.polygonize(shapely.get_parts(lines))))
    tree = shapely.STRtree(float_ll)
    assigned: dict[int, list[Polygon]] = {}
    for face in faces:
        best, best_area = -1, 0.0
        for idx in tree.query(face):
            a = float_ll[int(idx)].intersection(face).area
            if a > best_area:
                best, best_area = int(idx), a
        if best >= 0 and best_area > 0.5 * face.area:
            assigned.setdefault(best, []).append(face)
        # else: the face is one of the holes and belongs to no grid
    for idx, grid in enumerate(grids):
        parts = assigned[idx]
        geom = parts[0] if len(parts) == 1 else shapely.union_all(parts)
        assert isinstance(geom, Polygon) and geom.is_valid, grid.code
        grid.geom = orient(round6(geom), 1.0)

    def rebuild(unit: Unit) -> None:
        if not unit.children:
            return
        for child in unit.children:
            rebuild(child)
        merged = shapely.union_all([c.geom for c in unit.children])
        assert isinstance(merged, Polygon) and merged.is_valid, unit.code
        unit.geom = orient(round6(merged), 1.0)

    rebuild(district)
    assert len(district.geom.interiors) == len(HOLES), "every hole must survive"
    # List hole names in the order of the district's interior rings.
    names = []
    for ring in district.geom.interiors:
        ring_poly = Polygon(ring)
        names += [h.name for h in HOLES if ring_poly.contains(Point(h.centre))]
    assert sorted(names) == sorted(h.name for h in HOLES)
    district.extra["holes"] = names


# --------------------------------------------------------------------------
# Gazetteer
# --------------------------------------------------------------------------


@dataclass
class Entry:
    name: str
    kind: str
    lat: float
    lon: float
    grid: str
    aliases: list[str]


class Gazetteer:
    """Collects entries, enforcing placement and naming rules as it goes."""

    def __init__(self, grids: list[Unit]) -> None:
        self.grids = grids
        self.metric = [to_metric(g.geom) for g in grids]
        self.tree = shapely.STRtree(self.metric)
        self.entries: list[Entry] = []
        self.points: list[Coord] = []
        self.words: set[str] = set()

    def locate(self, lat: float, lon: float, margin: float = POINT_MARGIN_M) -> int | None:
        """Index of the grid holding the point at least ``margin`` metres
        from its border, or None (outside, in a hole, or too close)."""
        pt = Point(metric_xy(lon, lat))
        for idx in self.tree.query(pt, predicate="within"):
            geom = self.metric[int(idx)]
            if geom.boundary.distance(pt) >= margin:
                return int(idx)
        return None

    def free(self, lat: float, lon: float) -> bool:
        x, y = metric_xy(lon, lat)
        return all(math.hypot(x - px, y - py) >= POINT_SPACING_M for px, py in self.points)

    def try_add(
        self,
        name: str,
        kind: str,
        lat: float,
        lon: float,
        aliases: Sequence[str] = (),
        grid_filter: Callable[[Unit], bool] | None = None,
    ) -> bool:
        """Add the entry if the (rounded) point is valid; False otherwise."""
        if name in self.words:
            return False
        lat, lon = round(lat, 6), round(lon, 6)
        idx = self.locate(lat, lon)
        if idx is None or not self.free(lat, lon):
            return False
        if grid_filter is not None and not grid_filter(self.grids[idx]):
            return False
        kept = []
        for alias in aliases:
            if alias != name and alias not in self.words and alias not in kept:
                kept.append(alias)
        self.words.add(name)
        self.words.update(kept)
        self.points.append(metric_xy(lon, lat))
        self.entries.append(Entry(name, kind, lat, lon, self.grids[idx].code, kept))
        return True

    def add_near(
        self,
        name: str,
        kind: str,
        lat: float,
        lon: float,
        aliases: Sequence[str] = (),
        max_m: float = 400.0,
    ) -> bool:
        """Add at the nearest valid spot on a spiral around (lat, lon)."""
        for r in range(0, int(max_m) + 1, 15):
            steps = 1 if r == 0 else 12
            for k in range(steps):
                ang = 2.0 * math.pi * k / steps
                dlon = r * math.cos(ang) / M_PER_DEG_LON
                dlat = r * math.sin(ang) / M_PER_DEG_LAT
                if self.try_add(name, kind, lat + dlat, lon + dlon, aliases):
                    return True
        return False

    def random_in(self, unit_grids: Sequence[Unit], rng: random.Random) -> tuple[float, float]:
        grid = rng.choice(unit_grids)
        minx, miny, maxx, maxy = grid.geom.bounds
        return rng.uniform(miny, maxy), rng.uniform(minx, maxx)


def road_geometry(start: Coord, end: Coord) -> tuple[Coord, Coord, Coord, float]:
    """Metric start point, unit direction, left normal, length."""
    sx, sy = metric_xy(*start)
    ex, ey = metric_xy(*end)
    length = math.hypot(ex - sx, ey - sy)
    ux, uy = (ex - sx) / length, (ey - sy) / length
    return (sx, sy), (ux, uy), (-uy, ux), length


def metric_to_latlon(x: float, y: float) -> tuple[float, float]:
    return LAT0 + y / M_PER_DEG_LAT, LON0 + x / M_PER_DEG_LON


def add_landmarks(gaz: Gazetteer) -> None:
    for name, lat, lon, aliases in LANDMARKS:
        if not gaz.add_near(name, "landmark", lat, lon, aliases):
            raise RuntimeError(f"no room for landmark {name}")


def add_junctions(gaz: Gazetteer) -> None:
    lines = [(r, LineString([metric_xy(*r[2]), metric_xy(*r[3])])) for r in ROADS]
    for i, (ra, la) in enumerate(lines):
        for rb, lb in lines[i + 1 :]:
            if ra[1] == rb[1]:
                continue  # two segments of the same road
            hit = la.intersection(lb)
            if not isinstance(hit, Point):
                continue
            # East-west road first, as in 「季华五路与文华南路交叉口」.
            (_, ua, _, _), (_, ub, _, _) = (
                road_geometry(ra[2], ra[3]),
                road_geometry(rb[2], rb[3]),
            )
            first, second = (ra[0], rb[0]) if abs(ua[0]) >= abs(ub[0]) else (rb[0], ra[0])
            name = f"{first}与{second}交叉口"
            aliases = [f"{second}与{first}交叉口", f"{first}{second}路口"]
            placed = False
            # On the crossing if possible, else on one of its four corners.
            for r in (0.0, 25.0, 40.0):
                for k in range(1 if r == 0 else 4):
                    ang = math.pi / 4 + k * math.pi / 2
                    lat, lon = metric_to_latlon(
                        hit.x + r * math.cos(ang), hit.y + r * math.sin(ang)
                    )
                    if gaz.try_add(name, "road_junction", lat, lon, aliases):
                        placed = True
                        break
                if placed:
                    break
            if name == REQUIRED_JUNCTION and not placed:
                raise RuntimeError(f"could not place {name}")


def add_addresses(gaz: Gazetteer, rng: random.Random, street_of: dict[str, str]) -> None:
    def in_required_streets(grid: Unit) -> bool:
        return street_of[grid.code] in REQUIRED_ADDRESS_STREETS

    for name, _line, start, end in ROADS:
        (sx, sy), (ux, uy), (lx, ly), length = road_geometry(start, end)
        max_no = int(length / HOUSE_SPACING_M)
        count = max(4, round(length / 1000.0 * 4.5))
        numbers = sorted(rng.sample(range(1, max_no + 1), min(count, max_no)))
        required = name == REQUIRED_ADDRESS[0]
        if required and REQUIRED_ADDRESS[1] not in numbers:
            numbers = sorted([*numbers, REQUIRED_ADDRESS[1]])
        for no in numbers:
            along = no * HOUSE_SPACING_M
            side = 1.0 if no % 2 else -1.0  # odd numbers on the left side
            label = f"{name}{no}号"
            must = required and no == REQUIRED_ADDRESS[1]
            placed = False
            for offset in (30.0, 45.0, 60.0):
                x = sx + ux * along + lx * offset * side
                y = sy + uy * along + ly * offset * side
                lat, lon = metric_to_latlon(x, y)
                if gaz.try_add(
                    label,
                    "address",
                    lat,
                    lon,
                    [f"佛山市禅城区{label}"],
                    in_required_streets if must else None,
                ):
                    placed = True
                    break
            if must and not placed:
                raise RuntimeError(f"could not place {label}")


def stem(community_name: str) -> str:
    for suffix in ("社区", "村"):
        if community_name.endswith(suffix):
            return community_name[: -len(suffix)]
    return community_name


def add_in_units(
    gaz: Gazetteer,
    rng: random.Random,
    name: str,
    kind: str,
    grids: Sequence[Unit],
    aliases: Sequence[str],
) -> bool:
    codes = {g.code for g in grids}

    def wanted(grid: Unit) -> bool:  # bounding boxes overlap neighbours
        return grid.code in codes

    for _ in range(300):
        lat, lon = gaz.random_in(grids, rng)
        if gaz.try_add(name, kind, lat, lon, aliases, wanted):
            return True
    return False


def add_community_places(gaz: Gazetteer, rng: random.Random, district: Unit) -> None:
    communities = [u for u in walk(district) if u.level == "community"]
    for comm in communities:
        s = stem(comm.name)
        add_in_units(gaz, rng, f"{s}小学", "school", comm.children, [f"禅城区{s}小学", f"{s}小"])
        if rng.random() < 0.4:
            add_in_units(gaz, rng, f"{s}中学", "school", comm.children, [f"禅城区{s}中学"])
        if rng.random() < 0.75:
            market = f"{s}市场" if rng.random() < 0.5 else f"{s}菜市场"
            add_in_units(gaz, rng, market, "market", comm.children, [f"{s}街市"])


def add_compounds(gaz: Gazetteer, rng: random.Random, grids: Sequence[Unit]) -> None:
    names = [p + s for p in COMPOUND_PREFIXES for s in COMPOUND_SUFFIXES]
    rng.shuffle(names)
    used_prefix: set[str] = set()
    pool = []
    for n in names:  # one compound per prefix keeps them distinguishable
        prefix = next(
            p for p in COMPOUND_PREFIXES if n.startswith(p) and n[len(p) :] in COMPOUND_SUFFIXES
        )
        if prefix not in used_prefix:
            used_prefix.add(prefix)
            pool.append(n)
    for i, grid in enumerate(grids):
        # A second compound only while every later grid can still get one.
        extra = rng.random() < 0.15 and len(pool) > len(grids) - i + 1
        for _ in range(2 if extra else 1):
            if not pool:
                return
            name = pool.pop()
            alias = name.removesuffix("小区") if name.endswith("小区") else name + "小区"
            add_in_units(gaz, rng, name, "compound", [grid], [alias])


def build_gazetteer(district: Unit, rng: random.Random) -> Gazetteer:
    grids = [u for u in walk(district) if u.level == "grid"]
    street_of = {}
    for street in district.children:
        for u in walk(street):
            street_of[u.code] = street.extra["key"]
    gaz = Gazetteer(grids)
    add_landmarks(gaz)
    add_junctions(gaz)
    add_addresses(gaz, rng, street_of)
    add_community_places(gaz, rng, district)
    add_compounds(gaz, rng, grids)
    demo_lat, demo_lon = DEMO_POINT
    if gaz.locate(demo_lat, demo_lon, margin=0.0) is None:
        raise RuntimeError("demo point is not inside any grid")
    return gaz


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def feature(unit: Unit) -> dict[str, object]:
    props: dict[str, object] = {
        "code": unit.code,
        "name": unit.name,
        "level": unit.level,
        "parent": unit.parent,
    }
    if unit.level == "grid":
        props.update(unit.extra)
    elif unit.level == "district":
        props["holes"] = unit.extra["holes"]
    return {"type": "Feature", "properties": props, "geometry": mapping(unit.geom)}


def write_geojson(path: Path, district: Unit) -> None:
    order = ["district", "street", "area", "community", "grid"]
    units = sorted(walk(district), key=lambda u: (order.index(u.level), u.code))
    lines = [json.dumps(feature(u), ensure_ascii=False, separators=(",", ":")) for u in units]
    # One feature per line keeps diffs readable.
    text = '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"
    path.write_text(text, encoding="utf-8")


def write_gazetteer(path: Path, gaz: Gazetteer) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["name", "kind", "lat", "lon", "grid", "aliases"])
        for e in gaz.entries:
            writer.writerow(
                [e.name, e.kind, f"{e.lat:.6f}", f"{e.lon:.6f}", e.grid, "|".join(e.aliases)]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "demo"
    )
    args = parser.parse_args()
    rng = random.Random(SEED)
    district = build_hierarchy(rng, NameMaker(random.Random(SEED + 1)))
    finalise_geometry(district)
    gaz = build_gazetteer(district, random.Random(SEED + 2))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_geojson(args.out_dir / "grids.geojson", district)
    write_gazetteer(args.out_dir / "gazetteer.csv", gaz)
    counts: dict[str, int] = {}
    for u in walk(district):
        counts[u.level] = counts.get(u.level, 0) + 1
    print(
        f"units {counts}, area {area_km2(district.geom):.2f} km², "
        f"gazetteer {len(gaz.entries)} entries"
    )


if __name__ == "__main__":
    main()
