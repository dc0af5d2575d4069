"""The matter catalogue (事项清单): what the platform handles, who does it, how fast."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Kind = Literal["component", "event", "governance", "department"]
DEPARTMENT_CLASS = "部门诉求"  # the big class of the items made by Catalogue.with_departments
Level = Literal["grid", "street", "district"]
LEVELS: tuple[Level, ...] = ("grid", "street", "district")
KINDS: tuple[Kind, ...] = ("component", "event", "governance")
COLUMNS = (
    "code", "name", "big_class", "kind", "department", "level", "urgent",
    "response", "handling", "verification", "other_limits", "synonyms",
)
_LIMIT = re.compile(r"^(\d+)(m|h|wh|d|wd)$")


class CatalogueError(Exception):
    """The catalogue file is missing or malformed; the message names file, line and column."""


@dataclass(frozen=True)
class TimeLimit:
    """A limit such as 30m, 4h (clock time), 4wh (working hours), 3d or 2wd (working days)."""

    amount: int
    unit: str

    @classmethod
    def parse(cls, text: str) -> TimeLimit:
        match = _LIMIT.match(text.strip())
        if not match or int(match.group(1)) == 0:
            raise ValueError(f"'{text}' is not a time limit like 30m, 4h, 4wh, 3d or 2wd")
        return cls(int(match.group(1)), match.group(2))

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def working(self) -> bool:
        """Counted in working time (wh, wd), not on the clock (m, h, d)."""
        return self.unit in ("wh", "wd")


@dataclass(frozen=True)
class CatalogueItem:
    code: str
    name: str
    big_class: str
    kind: Kind
    department: str
    level: Level
    urgent: bool
    response: TimeLimit
    handling: TimeLimit
    verification: TimeLimit
    other_limits: tuple[tuple[str, TimeLimit], ...] = ()
    synonyms: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        """How people see it: 公用设施 › 污水井盖."""
        return f"{self.big_class} › {self.name}"

    def public_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "name": self.name,
            "big_class": self.big_class,
            "kind": self.kind,
            "department": self.department,
            "level": self.level,
            "urgent": self.urgent,
            "time_limits": {
                "response": str(self.response),
                "handling": str(self.handling),
                "verification": str(self.verification),
                **{label: str(limit) for label, limit in self.other_limits},
            },
        }


class Catalogue:
    def __init__(self, items: list[CatalogueItem]) -> None:
        if not items:
            raise CatalogueError("the catalogue has no items")
        self.items = items
        self._by_code = {item.code: item for item in items}

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str) -> CatalogueItem:
        return self._by_code[code]

    def big_classes(self) -> list[str]:
        """The big classes citizens choose among (department matters are not one of them)."""
        return sorted({item.big_class for item in self.items
                       if item.big_class != DEPARTMENT_CLASS})

    def with_departments(self, departments: dict[str, str]) -> Catalogue:
        """This catalogue plus one item per non-grid topic (D01 城乡建设诉求 …), routed to the
        topic's department: how a `department`-scope report is filed and tracked like any
        case (district level, a 12345-style limit of 15 working days)."""
        extra = [CatalogueItem(
            code=f"D{index:02d}", name=f"{topic}诉求", big_class=DEPARTMENT_CLASS,
            kind="department", department=department, level="district", urgent=False,
            response=TimeLimit(1, "wd"), handling=TimeLimit(15, "wd"),
            verification=TimeLimit(2, "wd"), synonyms=(topic,))
            for index, (topic, department) in enumerate(departments.items(), start=1)
            if f"D{index:02d}" not in self]
        return Catalogue([*self.items, *extra]) if extra else self

    def department_item(self, topic: str | None) -> CatalogueItem | None:
        """The item a `department`-scope report of this topic is filed under."""
        return next((i for i in self.items if i.kind == "department"
                     and topic in i.synonyms), None)

    def vocabulary(self) -> set[str]:
        """Names and synonyms: words jieba must keep whole."""
        words = set()
        for item in self.items:
            words.add(item.name)
            words.update(item.synonyms)
        return words


def _parse_row(row: dict[str, str]) -> CatalogueItem:
    def need(column: str) -> str:
        value = (row.get(column) or "").strip()
        if not value:
            raise ValueError(f"column '{column}' is empty")
        return value

    def parse(column: str, fn):
        try:
            return fn(need(column))
        except ValueError as exc:
            raise ValueError(f"column '{column}': {exc}") from None

    kind = need("kind")
    if kind not in KINDS:
        raise ValueError(f"column 'kind': '{kind}' must be one of {', '.join(KINDS)}")
    level = need("level")
    if level not in LEVELS:
        raise ValueError(f"column 'level': '{level}' must be one of {', '.join(LEVELS)}")
    urgent = need("urgent")
    if urgent not in ("0", "1"):
        raise ValueError(f"column 'urgent': '{urgent}' must be 0 or 1")
    others: list[tuple[str, TimeLimit]] = []
    for part in filter(None, (row.get("other_limits") or "").split("|")):
        label, sep, limit = part.partition(":")
        if not sep or not label.strip():
            raise ValueError(f"column 'other_limits': '{part}' is not label:limit")
        try:
            others.append((label.strip(), TimeLimit.parse(limit)))
        except ValueError as exc:
            raise ValueError(f"column 'other_limits': {exc}") from None
    synonyms = tuple(s.strip() for s in (row.get("synonyms") or "").split("|") if s.strip())
    return CatalogueItem(
        code=need("code"),
        name=need("name"),
        big_class=need("big_class"),
        kind=kind,  # type: ignore[arg-type]
        department=need("department"),
        level=level,  # type: ignore[arg-type]
        urgent=urgent == "1",
        response=parse("response", TimeLimit.parse),
        handling=parse("handling", TimeLimit.parse),
        verification=parse("verification", TimeLimit.parse),
        other_limits=tuple(others),
        synonyms=synonyms,
    )


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate a catalogue CSV; any problem raises CatalogueError naming the line.
    A file read before and unchanged since (same size and modification time) is not parsed
    again: every Services, CLI command and worker of a process reads the same file."""
    try:
        st = path.stat()
    except OSError:
        return Catalogue(_parse_file(path))  # which says what is wrong
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _parsed:
        items = tuple(_parse_file(path))
        _parsed.clear()  # one file is in use at a time; a changed one replaces it
        _parsed[key] = items
    return Catalogue(list(_parsed[key]))


_parsed: dict[tuple[str, int, int], tuple[CatalogueItem, ...]] = {}


def _parse_file(path: Path) -> list[CatalogueItem]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise CatalogueError(f"catalogue file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"{path}: not UTF-8 text") from exc
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise CatalogueError(f"{path}: missing column(s) {', '.join(missing)}")
    items: list[CatalogueItem] = []
    seen: set[str] = set()
    for line_no, row in enumerate(reader, start=2):
        try:
            item = _parse_row(row)
        except ValueError as exc:
            raise CatalogueError(f"{path}, line {line_no}: {exc}") from None
        if item.code in seen:
            raise CatalogueError(f"{path}, line {line_no}: code {item.code} appears twice")
        seen.add(item.code)
        items.append(item)
    return items
