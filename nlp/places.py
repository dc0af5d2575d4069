"""Find the place a message talks about: gazetteer names, aliases and road + number addresses."""

from __future__ import annotations

import csv
import re
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz, process

KINDS = ("address", "compound", "school", "market", "landmark", "road_junction")
_ADDRESS = re.compile(r"^(?P<road>.+?(?:路|街|道|巷|大道|大街|里))(?P<no>\d+)号$")
_ROAD_NO = re.compile(r"(\d+)\s*号")
_CN_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"两": 2, "〇": 0}
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千]+(?=号)")
FUZZY_CUTOFF = 90.0
ROAD_ONLY_SCORE = 60.0  # a road with no number: a candidate, never an answer


class GazetteerError(Exception):
    pass


@dataclass(frozen=True)
class Place:
    name: str
    kind: str
    lat: float
    lon: float
    grid: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlaceMatch:
    place: Place
    matched: str  # the words in the message that named it
    score: float  # 100 = exact name; lower = fuzzy or interpolated


def cn_to_int(text: str) -> int:
    """一百零八 → 108, 十八 → 18 (house numbers only, so up to the thousands)."""
    total, current = 0, 0
    for ch in text:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        else:
            unit = {"十": 10, "百": 100, "千": 1000}[ch]
            total += (current or 1) * unit
            current = 0
    return total + current


def normalize_numbers(text: str) -> str:
    return _CN_NUMBER.sub(lambda m: str(cn_to_int(m.group(0))), text)


def load_gazetteer(path: Path) -> list[Place]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError as exc:
        raise GazetteerError(f"gazetteer file not found: {path}") from exc
    places: list[Place] = []
    for line_no, row in enumerate(csv.DictReader(lines), start=2):
        try:
            if row["kind"] not in KINDS:
                raise ValueError(f"kind '{row['kind']}' must be one of {KINDS}")
            places.append(Place(
                name=row["name"].strip(), kind=row["kind"], lat=float(row["lat"]),
                lon=float(row["lon"]), grid=row["grid"].strip(),
                aliases=tuple(a for a in (row.get("aliases") or "").split("|") if a),
            ))
        except (KeyError, ValueError, AttributeError) as exc:
            raise GazetteerError(f"{path}, line {line_no}: {exc}") from None
    return places


def _pairs(text: str) -> set[str]:
    """The distinct pairs of adjacent characters in `text`."""
    return {text[k:k + 2] for k in range(len(text) - 1)}


class Gazetteer:
    def __init__(self, places: list[Place]) -> None:
        self.places = places
        self._names: dict[str, list[Place]] = defaultdict(list)
        for place in places:
            for name in (place.name, *place.aliases):
                self._names[name].append(place)
        # Longest names first, so 季华五路18号 wins over 季华五路.
        self._ordered = sorted(self._names, key=len, reverse=True)
        self._fuzzy_names = [n for n in self._ordered if len(n) >= 4]
        # Character pair → the fuzzy names holding it. A name can only reach FUZZY_CUTOFF
        # against a window of text that keeps a run of at least two of its characters, so
        # names sharing no pair with the text are skipped: a 450-character complaint is then
        # scored against ~15% of the names (8 ms → ~1 ms), with the same answers.
        self._fuzzy_pairs: dict[str, list[int]] = defaultdict(list)
        for i, name in enumerate(self._fuzzy_names):
            for pair in _pairs(name):
                self._fuzzy_pairs[pair].append(i)
        self._roads: dict[str, list[tuple[int, Place]]] = defaultdict(list)
        for place in places:
            match = _ADDRESS.match(place.name) if place.kind == "address" else None
            if match:
                self._roads[match["road"]].append((int(match["no"]), place))
        for numbers in self._roads.values():
            numbers.sort(key=lambda pair: pair[0])
        self._road_names = sorted(self._roads, key=len, reverse=True)

    def words(self) -> set[str]:
        """Names jieba should keep whole."""
        return set(self._names) | set(self._roads)

    def find(self, text: str) -> list[PlaceMatch]:
        """Candidate places named in `text`, best first; several equal ones mean ambiguous."""
        text = normalize_numbers(text)
        exact = self._exact(text)
        if exact:
            return exact
        numbered = self._road_number(text)
        if numbered:
            return numbered
        return self._fuzzy(text)

    def _exact(self, text: str) -> list[PlaceMatch]:
        found: list[PlaceMatch] = []
        covered: list[tuple[int, int]] = []
        for name in self._ordered:
            start = text.find(name)
            if start < 0 or any(s <= start < e for s, e in covered):
                continue
            covered.append((start, start + len(name)))
            found.extend(PlaceMatch(p, name, 100.0) for p in self._names[name])
        # A longer, more specific name is the better answer (小区 over the road it is on).
        found.sort(key=lambda m: -len(m.matched))
        return found

    def _road_number(self, text: str) -> list[PlaceMatch]:
        """Road + number not in the gazetteer: interpolate between the nearest known numbers."""
        for road in self._road_names:
            start = text.find(road)
            if start < 0:
                continue
            number = _ROAD_NO.match(text, start + len(road))
            if not number:
                # The road alone spans many grids: every numbered point on it is a candidate.
                return [PlaceMatch(p, road, ROAD_ONLY_SCORE) for _, p in self._roads[road]]
            wanted = int(number.group(1))
            known = self._roads[road]
            i = bisect_left([n for n, _ in known], wanted)
            lo, hi = known[max(i - 1, 0)], known[min(i, len(known) - 1)]
            if lo[0] == hi[0] or not lo[0] <= wanted <= hi[0]:
                nearest = lo if abs(lo[0] - wanted) <= abs(hi[0] - wanted) else hi
                lat, lon = nearest[1].lat, nearest[1].lon
            else:
                f = (wanted - lo[0]) / (hi[0] - lo[0])
                lat = lo[1].lat + f * (hi[1].lat - lo[1].lat)
                lon = lo[1].lon + f * (hi[1].lon - lo[1].lon)
            name = f"{road}{wanted}号"
            place = Place(name, "address", round(lat, 6), round(lon, 6), "")
            return [PlaceMatch(place, name, 90.0)]
        return []

    def _fuzzy(self, text: str) -> list[PlaceMatch]:
        if len(text) < 4:
            return []
        shared: set[int] = set()
        for pair in _pairs(text):
            shared.update(self._fuzzy_pairs.get(pair, ()))
        candidates = [self._fuzzy_names[i] for i in sorted(shared)]  # the usual order: ties
        hits = process.extract(
            text, candidates, scorer=fuzz.partial_ratio, score_cutoff=FUZZY_CUTOFF, limit=3
        )
        return [PlaceMatch(p, name, score) for name, score, _ in hits for p in self._names[name]]


# -- communities (社区, 村): named in words, located by the grid map ---------------------------

_COMMUNITY_SUFFIXES = ("社区", "村")


def community_names(name: str) -> tuple[str, ...]:
    """How people name a community: 东华社区 → 东华社区, 东华社区居委会, 东华居委会, 东华居委;
    紫洞村 → 紫洞村, 紫洞村委会, 紫洞村委. The bare stem (东华) is not one: it begins many
    other names (东华里, 东华路)."""
    names = [name, f"{name}居委会"]
    for suffix in _COMMUNITY_SUFFIXES:
        stem = name.removesuffix(suffix)
        if stem != name and len(stem) >= 2:
            names += [f"{stem}居委会", f"{stem}居委"] if suffix == "社区" \
                else [f"{name}委会", f"{name}委"]
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class CommunityMatch:
    matched: str  # the words in the message that named it
    codes: tuple[str, ...]  # several when communities of different streets share the name


class CommunityNames:
    """Finds the community a message names, by its name or its committee's (居委会, 村委会)."""

    def __init__(self, communities: list[tuple[str, str]]) -> None:
        """`communities`: (name, code) pairs."""
        self._codes: dict[str, list[str]] = defaultdict(list)
        for name, code in communities:
            for said in community_names(name):
                if code not in self._codes[said]:
                    self._codes[said].append(code)
        # First two characters → the names starting with them, longest first: one pass over
        # the text finds the first name said, however many communities the city has.
        self._by_start: dict[str, list[str]] = defaultdict(list)
        for said in sorted(self._codes, key=len, reverse=True):
            self._by_start[said[:2]].append(said)

    def words(self) -> set[str]:
        return set(self._codes)

    def find(self, text: str) -> CommunityMatch | None:
        """The community named first in `text` (its longest name there), or None."""
        for start in range(len(text) - 1):
            for said in self._by_start.get(text[start:start + 2], ()):
                if text.startswith(said, start):
                    return CommunityMatch(said, tuple(self._codes[said]))
        return None
