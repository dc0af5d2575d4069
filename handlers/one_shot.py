"""A whole report in one request (web forms, mini-program, load tests): text plus a place in,
a filed case (or the open case it joined) out — the same engine as the chat, without the
questions. The classifier's best item is used unless the caller names one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.cases import CaseDraft, ReporterRef, report_key
from bot.messages import Location
from bot.services import Services
from bot.texts import t
from handlers.filing import submit
from nlp.normalize import has_chinese, prepare


class ReportRejected(ValueError):
    """The report cannot be filed as sent; the message says what to fix, in Chinese."""


@dataclass
class OneShotReport:
    channel: str
    user: str
    text: str
    location: Location | None = None
    address: str = ""
    item_code: str | None = None
    media: list[str] | None = None
    report_id: str = ""  # the client's id for this report: a retry files it once


async def file_report(report: OneShotReport, s: Services) -> dict[str, Any]:
    text = prepare(report.text, s.config.nlp.max_text_chars)
    if not has_chinese(text):
        raise ReportRejected(t("no_chinese"))
    if report.item_code is not None and report.item_code not in s.catalogue:
        raise ReportRejected(t("oneshot.unknown_item", code=report.item_code[:16]))
    if report.location is not None:
        located = s.locator.from_point(report.location.lat, report.location.lon,
                                       report.location.coord)
    else:
        located = s.locator.from_text(report.address or text)
    if located.status != "found" or located.spot is None:
        raise ReportRejected(t("report.location_outside") if located.status == "outside"
                             else t("oneshot.no_place"))
    suggestions = s.models.get().rank(text, k=3)
    code = report.item_code or suggestions[0].code
    spot = located.spot
    filing = await submit(
        CaseDraft(text=text, item_code=code, grid_code=spot.grid.code, lat=spot.lat,
                  lon=spot.lon, address=spot.address or report.address,
                  media=list(report.media or []),
                  confidence=None if report.item_code else suggestions[0].confidence,
                  report_key=report_key(report.channel, report.user, report.report_id)
                  if report.report_id else ""),
        ReporterRef(report.channel, report.user), s,
    )
    # A newcomer whose report joined someone else's case follows its status, never its words.
    return {
        "case": s.cases.public_view(filing.case, with_timeline=False,
                                    own=not filing.attached),
        "attached": filing.attached,
        "replayed": filing.replayed,
        "suggestions": [{"code": x.code, "label": s.catalogue.get(x.code).label,
                         "confidence": round(x.confidence, 4)} for x in suggestions],
    }
