"""Periods the figures are counted over: local calendar days or months of the city's time
zone, as [start, end) in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_DAYS = 400  # a period longer than this is refused: a year and a bit, per day


class PeriodError(ValueError):
    """A period that cannot be read or is too long; the message says why."""


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, made from local calendar days of the city's time zone."""

    start: datetime
    end: datetime
    tz: ZoneInfo

    @classmethod
    def month(cls, text: str, tz: ZoneInfo) -> Period:
        """'2026-11' → 1 Nov 00:00 to 1 Dec 00:00 local time."""
        try:
            first = datetime.strptime(text.strip(), "%Y-%m").date()
        except ValueError:
            raise PeriodError(f"month '{text}' must look like 2026-11") from None
        if not 1970 <= first.year <= 9000:  # 9999-12 would overflow into year 10000
            raise PeriodError(f"month '{text}' is out of range")
        after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return cls.days(first, after, tz)

    @classmethod
    def days(cls, first: date, after: date, tz: ZoneInfo) -> Period:
        """Local days first … after-1."""
        if after <= first:
            raise PeriodError("the period must end after it starts")
        if (after - first).days > MAX_DAYS:
            raise PeriodError(f"a period is at most {MAX_DAYS} days")
        return cls(_local_midnight(first, tz), _local_midnight(after, tz), tz)

    @classmethod
    def last_days(cls, count: int, now: datetime, tz: ZoneInfo) -> Period:
        """The `count` local days up to and including today."""
        today = now.astimezone(tz).date()
        return cls.days(today - timedelta(days=count - 1), today + timedelta(days=1), tz)

    @property
    def first_day(self) -> date:
        return self.start.astimezone(self.tz).date()

    @property
    def last_day(self) -> date:
        return (self.end.astimezone(self.tz) - timedelta(microseconds=1)).date()


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
