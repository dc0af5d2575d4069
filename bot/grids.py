"""The grid hierarchy (district → street → area → community → grid) and locating points in it."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapely import STRtree
from shapely.geometry import Point, mapping, shape
from shapely.geometry.base import BaseGeometry

from bot.coords import to_wgs84

LEVELS = ("district", "street", "area", "community", "grid")


class GridsError(Exception):
    """A grid file is missing or malformed; the message says which feature and why."""


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    level: str
    parent: str | None
    geometry: BaseGeometry = field(repr=False, compare=False)
    properties: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def leader(self) -> str | None:
        return self.properties.get("leader")

    @property
    def group_chat(self) -> str | None:
        return self.properties.get("group_chat")


def parse_feature_collection(data: dict[str, Any]) -> list[Area]:
    """Validate a GeoJSON FeatureCollection of areas; raise GridsError naming the feature."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise GridsError("not a GeoJSON FeatureCollection")
    areas: list[Area] = []
    seen: set[str] = set()
    for index, feature in enumerate(data.get("features") or []):
        props = dict((feature or {}).get("properties") or {})
        where = f"feature {index} ({props.get('code', 'no code')})"
        for key in ("code", "name", "level"):
            if not isinstance(props.get(key), str) or not props[key]:
                raise GridsError(f"{where}: property '{key}' must be a non-empty string")
        if props["level"] not in LEVELS:
            raise GridsError(f"{where}: level '{props['level']}' must be one of {LEVELS}")
        if props["code"] in seen:
            raise GridsError(f"{where}: code appears twice")
        try:
            geometry = shape(feature["geometry"])
        except Exception as exc:  # shapely raises several types for bad geometry
            raise GridsError(f"{where}: bad geometry: {exc}") from None
        if geometry.geom_type not in ("Polygon", "MultiPolygon") or not geometry.is_valid:
            raise GridsError(f"{where}: geometry must be a valid Polygon or MultiPolygon")
        seen.add(props["code"])
        code, name, level = props.pop("code"), props.pop("name"), props.pop("level")
        areas.append(Area(code, name, level, props.pop("parent", None), geometry, props))
    if not any(a.level == "grid" for a in areas):
        raise GridsError("no feature has level 'grid'")
    for area in areas:
        if area.parent is not None and area.parent not in seen:
            raise GridsError(f"{area.code}: parent {area.parent} is not in the file")
    return areas


def load_geojson(path: Path) -> list[Area]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise GridsError(f"grid file not found: {path}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GridsError(f"{path}: not JSON: {exc}") from exc
    try:
        return parse_feature_collection(data)
    except GridsError as exc:
        raise GridsError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class CommunityCentre:
    """Where a report that names only its community is put: a point and the grid holding it."""

    community: Area
    grid: Area
    lat: float  # WGS-84
    lon: float
    grids: int  # how many grids the community has: one means the place is certain


class GridMap:
    """Read-only index of the areas; points are located among grid-level polygons only."""

    def __init__(self, areas: list[Area]) -> None:
        self.areas = {a.code: a for a in areas}
        self.grids = sorted((a for a in areas if a.level == "grid"), key=lambda a: a.code)
        self._tree = STRtree([g.geometry for g in self.grids])
        # community code → its grids (grid → community may skip levels in a 3-level city)
        self._community_grids: dict[str, list[Area]] = defaultdict(list)
        for grid in self.grids:
            community = self.at_level(grid.code, "community")
            if community is not None:
                self._community_grids[community.code].append(grid)

    def get(self, code: str) -> Area | None:
        return self.areas.get(code)

    def locate(self, lat: float, lon: float, coord: str = "wgs84") -> Area | None:
        """The grid covering the point, or None when it is in no grid (outside or in a hole).

        A point exactly on a shared border belongs to the grid with the lowest code, so the
        answer never depends on index order.
        """
        lat, lon = to_wgs84(lat, lon, coord)
        hits = self._tree.query(Point(lon, lat), predicate="intersects")
        if len(hits) == 0:
            return None
        return self.grids[int(min(hits))]

    def ancestors(self, code: str) -> list[Area]:
        """The area itself, then its parent, up to the top."""
        chain: list[Area] = []
        current = self.areas.get(code)
        while current is not None and len(chain) < len(LEVELS) + 1:
            chain.append(current)
            current = self.areas.get(current.parent) if current.parent else None
        return chain

    def at_level(self, code: str, level: str) -> Area | None:
        return next((a for a in self.ancestors(code) if a.level == level), None)

    def communities(self) -> list[Area]:
        """The communities (社区, 村) that hold at least one grid."""
        return [self.areas[code] for code in sorted(self._community_grids)]

    def grids_in(self, community: str) -> list[Area]:
        return list(self._community_grids.get(community, ()))

    def community_centre(self, code: str) -> CommunityCentre | None:
        """A community as a place: its only grid, or — when it has several — its main grid:
        the one the grid file names (`main_grid` property), else the one holding the
        community's centroid (a point surely inside it, for a ring-shaped community)."""
        community = self.areas.get(code)
        grids = self._community_grids.get(code)
        if community is None or not grids:
            return None
        named = self.areas.get(str(community.properties.get("main_grid") or ""))
        if named is not None and named in grids:
            point = named.geometry.representative_point()
            return CommunityCentre(community, named, point.y, point.x, len(grids))
        point = community.geometry.centroid
        if not community.geometry.contains(point):
            point = community.geometry.representative_point()
        holder = next((g for g in grids if g.geometry.covers(point)), None)
        if holder is None:  # the community's polygon and its grids disagree: the largest grid
            holder = max(grids, key=lambda g: g.geometry.area)
            point = holder.geometry.representative_point()
        return CommunityCentre(community, holder, point.y, point.x, len(grids))

    def feature_collection(self) -> dict[str, Any]:
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": mapping(a.geometry),
                    "properties": {
                        "code": a.code, "name": a.name, "level": a.level, "parent": a.parent,
                    },
                }
                for a in self.areas.values()
            ],
        }
