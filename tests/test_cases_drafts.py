"""bot/cases/drafts.py: what filing takes and gives — report keys that hold no one's id,
the clash of a key filed twice, distances and the box that finds cases near a point."""

from __future__ import annotations

import re
from datetime import UTC

import pytest
from sqlalchemy.exc import IntegrityError

from bot.cases.drafts import distance_m, is_report_clash, near_terms, report_key, utcnow


def test_a_report_key_is_stable_per_person_and_report_and_names_no_one() -> None:
    key = report_key("wechat", "o-user-1", "msg-42")
    assert key == report_key("wechat", "o-user-1", "msg-42")
    assert key.startswith("wechat:") and "o-user-1" not in key and "msg-42" not in key
    assert key != report_key("wechat", "o-user-2", "msg-42")
    assert key != report_key("wechat", "o-user-1", "msg-43")
    assert report_key("c" * 100, "u", "r").startswith("c" * 32 + ":")  # fits the column
    assert len(report_key("c" * 100, "u", "r")) == 32 + 1 + 40


@pytest.mark.parametrize(("message", "clash"), [
    ('duplicate key value violates unique constraint "filed_reports_pkey"', True),
    ("UNIQUE constraint failed: filed_reports.key", True),
    ('duplicate key value violates unique constraint "cases_number_key"', False),
])
def test_only_the_report_key_is_a_report_clash(message: str, clash: bool) -> None:
    assert is_report_clash(IntegrityError("INSERT …", {}, Exception(message))) is clash


def test_distances_in_metres() -> None:
    assert distance_m(23.0, 113.0, 23.0, 113.0) == 0
    assert distance_m(23.0, 113.0, 24.0, 113.0) == pytest.approx(111_195, rel=1e-3)
    assert distance_m(23.0, 113.0, 23.01, 113.01) == pytest.approx(
        distance_m(23.01, 113.01, 23.0, 113.0))


def _bounds(term: object) -> tuple[float, float]:
    sql = str(term.compile(compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    low, high = map(float, re.findall(r"-?\d+\.\d+(?:e-?\d+)?", sql))
    return low, high


@pytest.mark.parametrize("lat", [23.02, -33.9, 0.0, 89.99])
def test_the_box_holds_the_whole_circle(lat: float) -> None:
    lat_term, lon_term = near_terms(lat, 113.12, 500)
    (south, north), (west, east) = _bounds(lat_term), _bounds(lon_term)
    assert south < lat < north and west < 113.12 < east
    # Every edge is the radius away or more, so the index finds every case in the circle
    # (the box was once 0.1% short of it: a case 499.5 m due north of a follow was missed).
    reach = 500 * (1 - 1e-9)
    assert distance_m(lat, 113.12, north, 113.12) >= reach
    assert distance_m(lat, 113.12, south, 113.12) >= reach
    if abs(lat) < 89:  # (near a pole the box is capped, not the circle)
        assert distance_m(lat, 113.12, lat, east) >= reach
        assert distance_m(lat, 113.12, lat, west) >= reach


def test_now_is_aware_utc() -> None:
    assert utcnow().tzinfo is UTC
