from datetime import datetime

import pytest

from bot.catalogue import TimeLimit
from bot.config import CalendarConfig
from bot.worktime import WorkCalendar

# A city's own calendar, without the national one: 2026-10-01..07 off and Sunday 2026-10-11
# a make-up working day (调休).
CAL = WorkCalendar(CalendarConfig(
    national=False, holidays=[f"2026-10-0{d}" for d in range(1, 8)], workdays=["2026-10-11"],
))
# The default: China's calendar from chinese-calendar (2026: National Day 10-01..08 off,
# Saturday 10-10 a 调休 working day; Spring Festival 02-15..23 off, Saturday 02-28 worked).
NATIONAL = WorkCalendar(CalendarConfig())


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


def test_the_national_calendar_is_the_default() -> None:
    assert not NATIONAL.is_workday(at("2026-10-05").date())  # National Day
    assert NATIONAL.is_workday(at("2026-10-10").date())  # Saturday 调休
    assert not NATIONAL.is_workday(at("2026-02-18").date())  # Spring Festival
    assert NATIONAL.is_workday(at("2026-11-20").date()) and not NATIONAL.is_workday(
        at("2026-11-21").date())
    # Friday 2026-10-09 17:00 + 1 working hour: the 调休 Saturday morning.
    assert NATIONAL.add(at("2026-10-09 17:00"), TimeLimit.parse("1wh")) == at(
        "2026-10-10 09:00")


def test_local_lists_override_the_national_calendar() -> None:
    local = WorkCalendar(CalendarConfig(holidays=["2026-11-20"], workdays=["2026-10-05"]))
    assert not local.is_workday(at("2026-11-20").date())
    assert local.is_workday(at("2026-10-05").date())


def test_a_year_the_library_does_not_know_falls_back_to_weekends() -> None:
    later = at("2030-01-01").date()  # (chinese-calendar 1.11 knows up to 2026)
    assert not NATIONAL.knows(later.year)
    assert NATIONAL.is_workday(later)  # no holiday data: a Tuesday is worked
    assert not NATIONAL.is_workday(at("2030-01-05").date())  # a Saturday
    assert CAL.knows(later.year)  # nothing asked of the library


def test_working_minutes_and_shares_stay_inside_office_hours() -> None:
    # Thursday 15:01 → Friday 10:01 (a 1wd limit's due from issue 19's example): 149 minutes
    # on Thursday until 17:30, 91 on Friday from 08:30.
    start, due = at("2026-11-19 15:01"), at("2026-11-20 10:01")
    assert NATIONAL.working_minutes(start, due) == 149 + 91
    half = NATIONAL.share_of(start, due, 0.5, working=True)
    late = NATIONAL.share_of(start, due, 0.8, working=True)
    assert NATIONAL.is_working_time(half) and NATIONAL.is_working_time(late)
    assert start < half < late < due
    assert half == at("2026-11-19 17:01") and late == at("2026-11-20 09:13")
    # A clock-time (urgent) limit keeps clock shares, through the night.
    assert NATIONAL.share_of(start, due, 0.5, working=False) == at("2026-11-20 00:31")
