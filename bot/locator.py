"""From a pin or words to a grid: the one place both kinds of location are resolved."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bot.coords import to_wgs84
from bot.grids import Area, GridMap
from bot.texts import t
from nlp.places import ROAD_ONLY_SCORE, CommunityMatch, CommunityNames, Gazetteer, PlaceMatch

MAX_CHOICES = 3
NEAR_M = 300  # a named place this close to a pin is how people would say where it is
MAX_LABEL = 80


@dataclass(frozen=True)
class Spot:
    lat: float  # WGS-84
    lon: float
    address: str
    grid: Area


@dataclass
class Located:
    """status: found | ambiguous (see `choices`) | outside (a place, but in no grid) | none."""

    status: str
    spot: Spot | None = None
    choices: list[Spot] = field(default_factory=list)
    named: str = ""  # what the message called it


class Locator:
    def __init__(self, grids: GridMap, gazetteer: Gazetteer) -> None:
        self.grids = grids
        self.gazetteer = gazetteer
        # The places' points as arrays: `nearest` runs on every pin, so one vectorised
        # pass instead of a Python loop over the whole gazetteer.
        self._names = [place.name for place in gazetteer.places]
        self._points = np.array([(place.lat, place.lon) for place in gazetteer.places],
                                dtype=float).reshape(-1, 2)
        self.communities = CommunityNames([(c.name, c.code) for c in grids.communities()])

    def from_point(self, lat: float, lon: float, coord: str = "wgs84",
                   label: str = "") -> Located:
        """`label`: the channel's words for the pin (WeChat's Label, a Telegram venue's
        title and address), kept with the gazetteer's nearest named place as the address."""
        lat, lon = to_wgs84(lat, lon, coord)
        grid = self.grids.locate(lat, lon)
        if grid is None:
            return Located("outside")
        return Located("found", Spot(lat, lon, pin_address(label, self.nearest(lat, lon)),
                                     grid))

    def nearest(self, lat: float, lon: float, within_m: float = NEAR_M) -> str:
        """The gazetteer's closest named place to a point ('' when none is near)."""
        if not self._names:
            return ""
        scale = math.cos(math.radians(lat))
        dy = (self._points[:, 0] - lat) * 111_320
        dx = (self._points[:, 1] - lon) * 111_320 * scale
        metres = np.hypot(dx, dy)
        best = int(np.argmin(metres))
        return self._names[best] if metres[best] < within_m else ""

    def _spot(self, match: PlaceMatch) -> Spot | None:
        grid = self.grids.locate(match.place.lat, match.place.lon)
        if grid is None:
            return None
        return Spot(match.place.lat, match.place.lon, match.place.name, grid)

    def from_text(self, text: str) -> Located:
        """The place the words name. A community named (「东华社区门口」) bounds the search:
        places named inside it pick its grid; with none, the community itself is the place."""
        community = self.communities.find(text)
        if community is None:
            return self._from_matches(self.gazetteer.find(text))
        # Its own name is no other place (莲花社区 is not the 莲花 in 莲花路).
        rest = text.replace(community.matched, "，")
        inside = [m for m in self.gazetteer.find(rest)
                  if self._in_communities(m, community.codes)]
        # One of its grids named in full (「东华社区第2网格」): that grid, unless a place in it is.
        grid = next((g for code in community.codes for g in self.grids.grids_in(code)
                     if g.name in text), None)
        if inside:
            located = self._from_matches(inside)
            if located.status == "found" and located.spot is not None and (
                    grid is None or located.spot.grid == grid):
                return located
            if located.choices and grid is None:
                return located
        if grid is not None:
            point = grid.geometry.representative_point()
            return Located("found", Spot(point.y, point.x, grid.name, grid), named=grid.name)
        # Nothing named inside it (or only a road across several of its grids).
        return self.from_community(community)

    def from_community(self, community: CommunityMatch | str) -> Located:
        """A community as the place (a code, or what a message named): its only grid, or its
        main grid with an address that says the spot is the community's centre, so that the
        citizen sees it at the confirmation and can send the real place."""
        codes = (community,) if isinstance(community, str) else community.codes
        named = "" if isinstance(community, str) else community.matched
        spots = [s for s in (self._community_spot(code) for code in codes) if s is not None]
        if not spots:
            return Located("outside" if named else "none", named=named)
        if len(spots) == 1:
            return Located("found", spots[0], named=named)
        return Located("ambiguous", choices=spots[:MAX_CHOICES], named=named)

    def _community_spot(self, code: str) -> Spot | None:
        centre = self.grids.community_centre(code)
        if centre is None:
            return None
        name = centre.community.name
        address = name if centre.grids == 1 else t("place.community_centre", community=name)
        return Spot(centre.lat, centre.lon, address, centre.grid)

    def _in_communities(self, match: PlaceMatch, codes: tuple[str, ...]) -> bool:
        grid = self.grids.locate(match.place.lat, match.place.lon)
        community = self.grids.at_level(grid.code, "community") if grid is not None else None
        return community is not None and community.code in codes

    def _from_matches(self, matches: list[PlaceMatch]) -> Located:
        if not matches:
            return Located("none")
        best = [m for m in matches if m.score == matches[0].score
                and len(m.matched) == len(matches[0].matched)]
        spots = [s for s in (self._spot(m) for m in best) if s is not None]
        if not spots:
            return Located("outside", named=matches[0].matched)
        if len({s.grid.code for s in spots}) == 1:
            return Located("found", spots[0], named=matches[0].matched)
        if matches[0].score <= ROAD_ONLY_SCORE:
            # A road alone spans many grids: better to ask for a number than guess three.
            return Located("ambiguous", named=matches[0].matched)
        # One spot per grid, so the citizen picks a real difference.
        by_grid: dict[str, Spot] = {}
        for spot in spots:
            by_grid.setdefault(spot.grid.code, spot)
        return Located("ambiguous", choices=list(by_grid.values())[:MAX_CHOICES],
                       named=matches[0].matched)


def pin_address(label: str, near: str) -> str:
    """How a pin reads on cards: the channel's label and the nearest named place."""
    label = " ".join(label.split())[:MAX_LABEL]
    if label and near and near not in label:
        return t("place.label_near", label=label, near=near)
    if label:
        return label
    return t("place.near", near=near) if near else ""
