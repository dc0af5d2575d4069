"""Deadlines in working time: weekends, public holidays, 调休 workdays and office hours."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

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
        self.holidays = {date.fromisoformat(d) for d in config.holidays}
        self.workdays = {date.fromisoformat(d) for d in config.workdays}
        self.minutes_per_day = sum(
            (datetime.combine(date.min, e) - datetime.combine(date.min, s)).seconds // 60
            for s, e in self.spans
        )

    def is_workday(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.isoweekday() not in self.weekend and day not in self.holidays

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
