"""Deadlines in working time: weekends, public holidays, 调休 workdays and office hours.

The national holidays and 调休 days come from the chinese-calendar library (its maintainers
add each year once the State Council publishes it); the config's lists override it. A year
the library does not know yet falls back to plain weekends, and `gridbot doctor` warns.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import chinese_calendar

from bot.catalogue import TimeLimit
from bot.config import CalendarConfig

_PLAIN = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_MAX_DAYS_SCANNED = 3660  # a limit that never fits in ten years of calendar is a config error


class WorkCalendar:
    def __init__(self, config: CalendarConfig, timezone: str = "Asia/Shanghai") -> None:
        self.tz = ZoneInfo(timezone)
        self.spans: list[tuple[time, time]] = []
        for span in config.work_hours:
            start, end = span.split("-")
            self.spans.append((time.fromisoformat(start), time.fromisoformat(end)))
        self.spans.sort()
        self.weekend = set(config.weekend)
        self.national = config.national
        self._workday: dict[date, bool] = {}  # memo: filing asks about the same days
        self.holidays = {date.fromisoformat(d) for d in config.holidays}
        self.workdays = {date.fromisoformat(d) for d in config.workdays}
        self.minutes_per_day = sum(
            (datetime.combine(date.min, e) - datetime.combine(date.min, s)).seconds // 60
            for s, e in self.spans
        )

    def is_workday(self, day: date) -> bool:
        known = self._workday.get(day)
        if known is None:
            known = self._workday[day] = self._is_workday(day)
        return known

    def _is_workday(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        if self.knows(day.year) and self.national:
            # A named day is a statutory holiday (off) or its 调休 make-up day (worked);
            # every other day follows the week.
            off, name = chinese_calendar.get_holiday_detail(day)
            if name is not None:
                return not off
        return day.isoweekday() not in self.weekend

    def knows(self, year: int) -> bool:
        """Whether the national holidays of `year` are known (or not asked for)."""
        return not self.national or national_years()[0] <= year <= national_years()[1]

    def is_working_time(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz)
        return self.is_workday(local.date()) and any(
            s <= local.time() < e for s, e in self.spans)

    def working_minutes(self, start: datetime, end: datetime) -> int:
        """Working minutes between two moments (0 when end is not after start)."""
        local, until = start.astimezone(self.tz), end.astimezone(self.tz)
        total = timedelta()
        day = local.date()
        while day <= until.date():
            if self.is_workday(day):
                for span_start, span_end in self.spans:
                    begin = max(datetime.combine(day, span_start, self.tz), local)
                    finish = min(datetime.combine(day, span_end, self.tz), until)
                    if finish > begin:
                        total += finish - begin
            day += timedelta(days=1)
        return int(total.total_seconds() // 60)

    def share_of(self, start: datetime, due: datetime, share: float,
                 working: bool) -> datetime:
        """The moment `share` of the way from start to due: counted in working minutes for a
        working-time limit (so a reminder falls inside office hours), else on the clock."""
        return self.shares_of(start, due, (share,), working)[0]

    def shares_of(self, start: datetime, due: datetime, shares: tuple[float, ...],
                  working: bool) -> list[datetime]:
        """`share_of` for several shares, counting the working minutes once."""
        minutes = self.working_minutes(start, due) if working else 0
        if minutes <= 0:
            return [start + (due - start) * share for share in shares]
        return [self.add_working_minutes(start, max(1, round(minutes * share)))
                for share in shares]

    def add(self, start: datetime, limit: TimeLimit) -> datetime:
        """The moment `limit` after `start`; returned in the same timezone as `start`."""
        if limit.unit in _PLAIN:
            return start + limit.amount * _PLAIN[limit.unit]
        minutes = limit.amount * (60 if limit.unit == "wh" else self.minutes_per_day)
        return self.add_working_minutes(start, minutes)

    def add_working_minutes(self, start: datetime, minutes: int) -> datetime:
        local = start.astimezone(self.tz)
        remaining = timedelta(minutes=minutes)
        day = local.date()
        for _ in range(_MAX_DAYS_SCANNED):
            if self.is_workday(day):
                for span_start, span_end in self.spans:
                    begin = datetime.combine(day, span_start, self.tz)
                    end = datetime.combine(day, span_end, self.tz)
                    begin = max(begin, local)
                    if begin >= end:
                        continue
                    if begin + remaining <= end:
                        return (begin + remaining).astimezone(start.tzinfo)
                    remaining -= end - begin
            day += timedelta(days=1)
        raise ValueError("the working calendar has no working time in the next ten years")


@cache
def national_years() -> tuple[int, int]:
    """The first and last year chinese-calendar knows."""
    years = [day.year for day in chinese_calendar.constants.holidays]
    return min(years), max(years)
