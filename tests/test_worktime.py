from datetime import datetime

import pytest

from bot.catalogue import TimeLimit
from bot.config import CalendarConfig
from bot.worktime import WorkCalendar

# 2026-10-01..07 National Day holiday; Sunday 2026-10-11 a make-up working day (调休).
CAL = WorkCalendar(CalendarConfig(
    holidays=[f"2026-10-0{d}" for d in range(1, 8)], workdays=["2026-10-11"],
))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CAL.tz)


@pytest.mark.parametrize(("start", "limit", "due"), [
    ("2026-11-20 09:00", "30m", "2026-11-20 09:30"),  # plain minutes
    ("2026-11-21 22:00", "4h", "2026-11-22 02:00"),  # urgent: clock hours through the night
    ("2026-11-20 09:00", "2wh", "2026-11-20 11:00"),
    ("2026-11-20 11:00", "2wh", "2026-11-20 15:00"),  # lunch break skipped
    ("2026-11-20 17:00", "1wh", "2026-11-23 09:00"),  # Friday evening → Monday morning
    ("2026-11-21 10:00", "1wh", "2026-11-23 09:30"),  # reported on Saturday
    ("2026-11-20 09:00", "1wd", "2026-11-23 09:00"),  # one working day = 7 working hours
    ("2026-09-30 16:00", "1wd", "2026-10-08 16:00"),  # across the National Day week
    ("2026-10-09 17:00", "1wh", "2026-10-11 09:00"),  # the make-up Sunday is a working day
    ("2026-11-20 09:00", "2d", "2026-11-22 09:00"),  # calendar days
])
def test_deadlines(start: str, limit: str, due: str) -> None:
    assert CAL.add(at(start), TimeLimit.parse(limit)) == at(due)


def test_working_day_rules() -> None:
    assert not CAL.is_workday(at("2026-10-02").date())
    assert CAL.is_workday(at("2026-10-11").date())
    assert not CAL.is_workday(at("2026-11-22").date())
    assert CAL.minutes_per_day == 420


def test_a_calendar_with_no_working_time_is_an_error() -> None:
    never = WorkCalendar(CalendarConfig(weekend=[1, 2, 3, 4, 5, 6, 7]))
    with pytest.raises(ValueError, match="no working time"):
        never.add(at("2026-11-20 09:00"), TimeLimit.parse("1wh"))
