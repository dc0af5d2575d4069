"""bot/scope.py: the levels and the `kind:ref` scopes read and written in one place."""

from __future__ import annotations

import pytest

from bot.scope import LEVELS, Level, Scope, next_level


def test_levels_go_grid_street_district_and_stop_at_the_top() -> None:
    assert LEVELS == (Level.GRID, Level.STREET, Level.DISTRICT)
    assert next_level("grid") is Level.STREET
    assert next_level("street") is Level.DISTRICT
    assert next_level("district") is None
    assert next_level("department") is None and next_level("") is None


@pytest.mark.parametrize("text,kind,ref", [
    ("grid:440604003020101", "grid", "440604003020101"),
    ("street:440604003", "street", "440604003"),
    ("department:区城市管理和综合执法局", "department", "区城市管理和综合执法局"),
    ("district:440604", "district", "440604"),
    ("grid:", "grid", ""),
    ("", "", ""),
])
def test_a_scope_reads_back_as_it_was_written(text: str, kind: str, ref: str) -> None:
    scope = Scope.parse(text)
    assert (scope.kind, scope.ref) == (kind, ref)
    if text:
        assert str(scope) == text


def test_areas_have_their_level_and_departments_work_at_the_districts() -> None:
    assert Scope.grid("g1").is_area and Scope.grid("g1").level is Level.GRID
    assert Scope.street("s1").level is Level.STREET
    department = Scope.department("区住房城乡建设和水利局")
    assert not department.is_area and department.level is Level.DISTRICT
    assert not Scope.grid("").is_area  # a kind without a code names nothing
    kind, ref = Scope.street("s1")  # unpacks as (kind, ref)
    assert (kind, ref) == ("street", "s1")
