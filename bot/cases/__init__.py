"""Cases: filing them, moving them through the workflow, telling people, reading them.

  drafts     what filing takes and gives (CaseDraft, ReporterRef, Filing) and its errors
  rows       the rows a filing and a move write, described once
  filing     new cases and reports attached to open ones (filing_pg: the PostgreSQL path)
  lifecycle  transitions, timers, escalation, ratings, merges and splits
  notices    the only writer of outbox rows
  views      reading cases and presenting them (the public view)
  service    CaseService, which wires the parts
"""

from bot.cases.drafts import (
    MAX_ADDRESS,
    MAX_MEDIA_REF,
    CaseDraft,
    CaseNotFound,
    Clock,
    Filing,
    RatingRefused,
    ReporterRef,
    distance_m,
    is_report_clash,
    report_key,
    utcnow,
)
from bot.cases.rows import REMIND_AT
from bot.cases.service import CaseService
from bot.cases.views import PUBLIC_ACTIONS
from bot.scope import NEXT_LEVEL

__all__ = [
    "MAX_ADDRESS", "MAX_MEDIA_REF", "NEXT_LEVEL", "PUBLIC_ACTIONS", "REMIND_AT", "CaseDraft",
    "CaseNotFound", "CaseService", "Clock", "Filing", "RatingRefused", "ReporterRef",
    "distance_m", "is_report_clash", "report_key", "utcnow",
]
