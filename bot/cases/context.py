"""What every part of the case service shares: the database, the catalogue, the map, the
calendar, the clock and the case numbers."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.cases.drafts import Clock
from bot.catalogue import Catalogue
from bot.config import CasesConfig
from bot.grids import GridMap
from bot.numbering import CaseNumbers
from bot.storage import Database
from bot.teams import Teams
from bot.worktime import WorkCalendar


@dataclass
class CaseContext:
    db: Database
    catalogue: Catalogue
    grids: GridMap
    calendar: WorkCalendar
    config: CasesConfig
    teams: Teams
    numbers: CaseNumbers
    clock: Clock
    tz: ZoneInfo
