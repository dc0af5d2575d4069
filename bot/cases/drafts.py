"""What comes into filing (a draft, its reporter) and what comes out (a filing), and the
errors callers catch."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.models import Case

Clock = Callable[[], datetime]
MAX_MEDIA_REF = 500  # case_media.ref: a longer reference is not a file id or a link
MAX_ADDRESS = 200  # cases.address
EARTH_RADIUS_M = 6_371_000


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReporterRef:
    channel: str
    external_id: str
    phone: str | None = None


@dataclass
class CaseDraft:
    text: str
    item_code: str
    grid_code: str
    lat: float | None = None
    lon: float | None = None
    address: str = ""
    media: list[str] = field(default_factory=list)
    confidence: float | None = None
    # channel:user:id of the client's report (its 确认 message, a form's report_id): the same
    # key files once; a retry gets the case it filed (Filing.replayed).
    report_key: str = ""
    # Danger read from the words (a gas smell, an elderly person unseen): urgent whatever the
    # item says.
    urgent: bool = False
    source: str = "citizen"  # citizen | patrol (a grid worker's own report) | hotline


@dataclass(frozen=True)
class Filing:
    case: Case
    attached: bool  # True: an open case of the same problem nearby took this report
    replayed: bool = False  # True: this report key was filed before; `case` is what it filed


class CaseNotFound(Exception):
    pass


class RatingRefused(Exception):
    """Only a closed, not yet rated case can be rated."""


def report_key(channel: str, user: str, report_id: str) -> str:
    """The filed_reports key of a client's report id: hashed, so it fits and holds no id."""
    digest = hashlib.blake2b(f"{user}\x00{report_id}".encode(), digest_size=20).hexdigest()
    return f"{channel[:32]}:{digest}"


def is_report_clash(exc: IntegrityError) -> bool:
    """The filed_reports key was taken: the report was filed before (PostgreSQL or SQLite)."""
    text = str(exc.orig)
    return "filed_reports_pkey" in text or "filed_reports.key" in text


def near_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(lowest lat, highest lat, lowest lon, highest lon) of the box around (lat, lon) that
    holds the circle of `radius_m`."""
    # Degrees of the metres `distance_m` measures: at 111,320 m a degree the box fell ~0.1%
    # short of the circle, and a case just inside the radius due north or south was missed.
    d_lat = math.degrees(radius_m / EARTH_RADIUS_M)
    d_lon = d_lat / max(math.cos(math.radians(lat)), 0.01)
    return lat - d_lat, lat + d_lat, lon - d_lon, lon + d_lon


def near_terms(lat: float, lon: float, radius_m: float) -> list[Any]:
    """WHERE terms for cases whose point lies in the box around (lat, lon) that holds the
    circle of `radius_m` (the index finds those; `distance_m` then keeps the circle)."""
    lat_lo, lat_hi, lon_lo, lon_hi = near_box(lat, lon, radius_m)
    return [Case.lat.between(lat_lo, lat_hi), Case.lon.between(lon_lo, lon_hi)]


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in metres: plenty precise at a city's scale."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))
