"""Handling levels and the scopes that name who holds a case or what a person may see.

A scope is written `kind:ref` everywhere it is stored (cases.assignee, workers.scope,
staff_users.scope): grid:CODE, street:CODE, district:CODE or department:NAME. This module
is the one place that reads and writes that form.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Level(StrEnum):
    """Where a case is handled: the grid, the street (街道) or the district (区)."""

    GRID = "grid"
    STREET = "street"
    DISTRICT = "district"


LEVELS: tuple[Level, ...] = tuple(Level)
# The level a case is handed up to when it is not handled in time; the district is the top.
NEXT_LEVEL: dict[Level, Level] = {Level.GRID: Level.STREET, Level.STREET: Level.DISTRICT}
AREA_KINDS = frozenset(level.value for level in Level)
SCOPE_KINDS = ("grid", "street", "district", "department")


def next_level(level: str) -> Level | None:
    """The level above, or None at the district."""
    return NEXT_LEVEL.get(Level(level)) if level in AREA_KINDS else None


class Scope(NamedTuple):
    """Unpacks as (kind, ref)."""

    kind: str  # one of SCOPE_KINDS (unchecked: a stored value is read as it is)
    ref: str  # an area code, or a department's name

    @classmethod
    def parse(cls, text: str) -> Scope:
        kind, _, ref = text.partition(":")
        return cls(kind, ref)

    @classmethod
    def grid(cls, code: str) -> Scope:
        return cls("grid", code)

    @classmethod
    def street(cls, code: str) -> Scope:
        return cls("street", code)

    @classmethod
    def department(cls, name: str) -> Scope:
        return cls("department", name)

    def __str__(self) -> str:
        return f"{self.kind}:{self.ref}"

    @property
    def is_area(self) -> bool:
        """A grid, street or district with a code (not a department, not empty)."""
        return self.kind in AREA_KINDS and bool(self.ref)

    @property
    def level(self) -> Level:
        """The handling level a case assigned here is at: a department works at the
        district's."""
        return Level(self.kind) if self.kind in AREA_KINDS else Level.DISTRICT
