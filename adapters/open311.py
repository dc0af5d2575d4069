"""Open311 GeoReport v2 at /open311/v2/: existing Open311 clients and FixMyStreet-style front
ends list the catalogue as services, file cases and follow them, in .json or .xml.

Transport only: a POST files through the one-shot engine (handlers/one_shot.py) on channel
"open311"; reads come from the case service. Reading is public, so answers carry the problem
(item, place, status, times, agency) and never the reporter: identities are kept only as an
HMAC keyed with the client's api_key, and case text is shown only for cases filed through
Open311 (a WeChat or Telegram citizen never agreed to publish their words).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from quart import Blueprint, Response, request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from adapters import app_state
from adapters.open311_xml import document
from bot.apikeys import verify_key
from bot.catalogue import Catalogue, CatalogueItem, TimeLimit
from bot.messages import Location
from bot.models import Case, Open311Token
from bot.services import Services
from bot.texts import t
from bot.workflow import OPEN, Status
from handlers.one_shot import OneShotReport, ReportRejected, file_report
from nlp.normalize import clean, mask_personal, public_text

CHANNEL = "open311"
SPEC = "http://wiki.open311.org/GeoReport_v2"
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
MAX_RESULTS = 1000  # the spec's cap on one GET requests answer
MAX_SPAN = timedelta(days=90)  # the spec's default window and largest start..end span
MAX_DESCRIPTION = 4000  # request.json: description maxLength
MAX_FIELD = 256  # identity fields, ids: longer is not a real value
_SPACED_OFFSET = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")
EARLIEST_YEAR, LATEST_YEAR = 1970, 9000  # dates outside are refused (400), not overflowed
CLOSED = (Status.CLOSED.value, Status.REJECTED.value)  # Open311 has open and closed only

URL_PREFIX = "/open311/v2"
open311 = Blueprint("open311", __name__, url_prefix=URL_PREFIX)


class Open311Error(Exception):
    """An answer in the spec's error format: [{"code": status, "description": …}]."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


# -- answering -----------------------------------------------------------------------------

def _answer(fmt: str, data: Any, root: str, item: str | None = None,
            status: int = 200) -> Response:
    if fmt == "xml":
        body = document(root, data, item)
    else:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    response = Response(body, status=status, content_type=FORMATS.get(fmt, FORMATS["json"]))
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _error(fmt: str, err: Open311Error) -> Response:
    return _answer(fmt, [{"code": err.status, "description": err.description}], "errors",
                   "error", status=err.status)


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, t("open311.bad_format", format=fmt[:16]))
    return fmt


def _services() -> Services:
    return app_state.services()


@open311.errorhandler(Open311Error)
async def _open311_error(err: Open311Error) -> Response:
    fmt = "xml" if request.path.endswith(".xml") else "json"
    return _error(fmt, err)


# -- presenting ----------------------------------------------------------------------------

def _w3c(moment: datetime | None, tz: ZoneInfo) -> str | None:
    """W3C / RFC 3339 with the city's offset: 2026-11-23T09:00:00+08:00."""
    return moment.astimezone(tz).isoformat(timespec="seconds") if moment else None


def _limit_text(limit: TimeLimit) -> str:
    return t(f"open311.unit.{limit.unit}", n=limit.amount)


def service_entry(item: CatalogueItem) -> dict[str, Any]:
    """A catalogue item as a GeoReport service. No item has extra form fields (metadata
    false); each is filed and numbered at once (type realtime)."""
    return {
        "service_code": item.code,
        "service_name": item.name,
        "description": t("open311.service_description", label=item.label,
                         department=item.department, handling=_limit_text(item.handling)),
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join((item.name, *item.synonyms)),
        "group": item.big_class,
    }


def _status_notes(services: Services, case: Case) -> str | None:
    """The note of the latest status change on the public timeline: why it is where it is.
    Other events (attached reports, reminders) are not explanations and stay out."""
    timeline = services.cases.public_timeline(case)
    notes = [e["note"] for e in timeline if e["action"] == "transition" and e["note"]]
    return notes[-1] if notes else None


def public_place(services: Services, case: Case) -> str | None:
    """Where, as the public may read it: the named place the address contains (a gazetteer
    entry: road and number, compound, landmark), else the grid's name — never the free text
    someone typed, which may hold a flat number, a name or a phone."""
    if case.address:
        found = services.gazetteer.find(case.address)
        if found:
            return found[0].place.name
    grid = services.grids.get(case.grid_code)
    return grid.name if grid else None


def _media_url(case: Case) -> str | None:
    """Only a link an Open311 client gave: other channels' media are private file ids."""
    if case.channel != CHANNEL:
        return None
    return next((m.ref for m in case.media if _is_http_url(m.ref)), None)


def request_entry(services: Services, case: Case) -> dict[str, Any]:
    tz = services.cases.tz
    closed = case.status in CLOSED
    entry: dict[str, Any] = {
        "service_request_id": case.number,
        "status": "closed" if closed else "open",
        "status_notes": _status_notes(services, case),
        "service_name": case.item_name,
        "service_code": case.item_code,
        # The reporter's own words are published only when they were sent to be (Open311).
        "description": public_text(case.text) if case.channel == CHANNEL else None,
        "agency_responsible": case.department,
        "service_notice": None if closed else t(
            "open311.request_notice", department=case.department,
            due=services.cases.local(case.handling_due) or "-"),
        "requested_datetime": _w3c(case.created_at, tz),
        "updated_datetime": _w3c(case.closed_at if closed and case.closed_at
                                 else case.updated_at, tz),
        "expected_datetime": _w3c(case.handling_due, tz),
        "address": public_place(services, case),
        "lat": case.lat,  # cases keep WGS-84 (the locator converts GCJ-02 on the way in)
        "long": case.lon,
        "media_url": _media_url(case),
    }
    return entry


async def _cases(services: Services, query: Any) -> list[Case]:
    query = query.options(selectinload(Case.events), selectinload(Case.media))
    async with services.db.session() as session:
        return list((await session.execute(query)).scalars())


# -- reading -------------------------------------------------------------------------------

@open311.get("/discovery.<fmt>")
async def discovery(fmt: str) -> Response:
    fmt = _format(fmt)
    services = _services()
    catalogue_file = services.config.path(services.config.catalogue.file)
    # The services list is what changes: the catalogue file's time is the changeset.
    changed = datetime.fromtimestamp(catalogue_file.stat().st_mtime, services.cases.tz)
    changeset = changed.isoformat(timespec="seconds")
    return _answer(fmt, {
        "changeset": changeset,
        "contact": t("open311.contact"),
        "key_service": t("open311.key_service"),
        "endpoints": [{
            "specification": SPEC,
            "url": request.host_url.rstrip("/") + URL_PREFIX,
            "changeset": changeset,
            "type": "production",
            "formats": ["application/json", "text/xml"],
        }],
    }, "discovery")


@open311.get("/services.<fmt>")
async def services_list(fmt: str) -> Response:
    fmt = _format(fmt)
    items = [service_entry(item) for item in _services().catalogue.items]
    return _answer(fmt, items, "services", "service")


@open311.get("/services/<code>.<fmt>")
async def service_definition(code: str, fmt: str) -> Response:
    """Every service has a definition; ours have no attributes (metadata false), which is an
    empty list, not a missing definition."""
    fmt = _format(fmt)
    if code not in _services().catalogue:
        raise Open311Error(404, t("open311.unknown_service", code=code[:16]))
    return _answer(fmt, {"service_code": code, "attributes": []}, "service_definition")


def _moment(name: str, tz: ZoneInfo) -> datetime | None:
    """A W3C datetime parameter; a date alone is that day's start, a time without an offset
    is the city's time."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    # An unescaped "+" of an offset arrives as a space (2026-11-23T09:00:00 08:00).
    raw = _SPACED_OFFSET.sub(r"\1+\2", raw)
    try:
        moment = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise Open311Error(400, t("open311.bad_date", name=name, value=raw[:40])) from None
    # Years near 1 or 9999 overflow when moved to UTC or by the 90-day window: no case
    # is that old or that far ahead, so they are refused as dates this API does not serve.
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise Open311Error(400, t("open311.bad_date", name=name, value=raw[:40]))
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _matchable(value: str) -> bool:
    """Ids and codes are printable; anything else matches nothing (and a NUL would make
    PostgreSQL refuse the query rather than find no row)."""
    return value.isprintable() and len(value) <= MAX_FIELD


def _list_param(name: str) -> list[str]:
    parts = (part.strip() for part in request.args.get(name, "").split(","))
    return [part for part in parts if part]


@open311.get("/requests.<fmt>")
async def requests_list(fmt: str) -> Response:
    fmt = _format(fmt)
    services = _services()
    ids = _list_param("service_request_id")
    if ids:  # the spec: ids override every other filter
        query = select(Case).where(Case.number.in_([i for i in ids if _matchable(i)]
                                                   [:MAX_RESULTS]))
    else:
        query = select(Case)
        codes = _list_param("service_code")
        if codes:
            query = query.where(Case.item_code.in_([c for c in codes if _matchable(c)]))
        statuses = set(_list_param("status"))
        if statuses - {"open", "closed"}:
            raise Open311Error(400, t("open311.bad_status"))
        if statuses == {"open"}:
            query = query.where(Case.status.in_([s.value for s in OPEN]))
        elif statuses == {"closed"}:
            query = query.where(Case.status.in_(CLOSED))
        tz = services.cases.tz
        start, end = _moment("start_date", tz), _moment("end_date", tz)
        if end is None:
            end = start + MAX_SPAN if start is not None else services.cases.clock()
        if start is None:
            start = end - MAX_SPAN
        if start > end:
            raise Open311Error(400, t("open311.bad_range"))
        if end - start > MAX_SPAN:
            raise Open311Error(400, t("open311.span_too_long", days=MAX_SPAN.days))
        query = query.where(Case.created_at >= start, Case.created_at <= end)
    query = query.order_by(Case.created_at.desc(), Case.id.desc()).limit(MAX_RESULTS)
    entries = [request_entry(services, case) for case in await _cases(services, query)]
    return _answer(fmt, entries, "service_requests", "request")


@open311.get("/requests/<number>.<fmt>")
async def request_one(number: str, fmt: str) -> Response:
    fmt = _format(fmt)
    services = _services()
    found: list[Case] = []
    if _matchable(number):
        found = await _cases(services, select(Case).where(Case.number == number))
    if not found:
        raise Open311Error(404, t("open311.unknown_request", id=number[:40]))
    # A list of one, as the spec's examples show, so clients parse both answers alike.
    return _answer(fmt, [request_entry(services, found[0])], "service_requests", "request")


@open311.get("/tokens/<token>.<fmt>")
async def token_lookup(token: str, fmt: str) -> Response:
    fmt = _format(fmt)
    row = None
    if _matchable(token) and len(token) <= 64:
        async with _services().db.session() as session:
            row = await session.get(Open311Token, token)
    if row is None:
        raise Open311Error(404, t("open311.unknown_token"))
    entry: dict[str, Any] = {"token": row.token}
    if row.case_number is not None:
        entry["service_request_id"] = row.case_number
    return _answer(fmt, [entry], "service_requests", "request")


# -- filing --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Submission:
    """A POST's fields, checked: what the case needs, plus who for the reporter identity."""

    service_code: str
    text: str
    location: Location | None
    address: str
    media: list[str]
    identity: tuple[str, str]  # (kind, value) of the strongest identity field sent


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    # isprintable: no spaces to split on, no NUL that PostgreSQL would refuse to store.
    return parts.scheme in ("http", "https") and bool(parts.netloc) and value.isprintable() \
        and " " not in value


def _field(form: Any, name: str) -> str:
    """Form field, or the query string (the swagger file puts the parameters there)."""
    value = form.get(name)
    if value is None:
        value = request.args.get(name, "")
    return str(value).strip()


def _coordinate(raw: str, name: str, bound: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise Open311Error(400, t("open311.bad_coordinate", name=name)) from None
    if not math.isfinite(value) or abs(value) > bound:
        raise Open311Error(400, t("open311.bad_coordinate", name=name))
    return value


def parse_submission(form: Any, catalogue: Catalogue) -> Submission:
    code = _field(form, "service_code")
    if not code:
        raise Open311Error(400, t("open311.missing", name="service_code"))
    if code not in catalogue:
        raise Open311Error(400, t("open311.unknown_service", code=code[:16]))
    lat, lon = _field(form, "lat"), _field(form, "long")
    address = clean(_field(form, "address_string") or _field(form, "address_id"))
    location = None
    if lat or lon:
        if not (lat and lon):
            raise Open311Error(400, t("open311.half_point"))
        location = Location(_coordinate(lat, "lat", 90), _coordinate(lon, "long", 180))
    elif not address:
        raise Open311Error(400, t("open311.no_location"))
    if len(address) > 200:
        raise Open311Error(400, t("open311.too_long", name="address_string", max=200))
    description = _field(form, "description")
    if len(description) > MAX_DESCRIPTION:
        raise Open311Error(400, t("open311.too_long", name="description", max=MAX_DESCRIPTION))
    media_url = _field(form, "media_url")
    if media_url and (len(media_url) > 500 or not _is_http_url(media_url)):
        raise Open311Error(400, t("open311.bad_media_url"))
    identity = ("anonymous", "")
    for name in ("account_id", "email", "phone", "device_id"):
        value = _field(form, name)
        if len(value) > MAX_FIELD:
            raise Open311Error(400, t("open311.too_long", name=name, max=MAX_FIELD))
        if value and identity[0] == "anonymous":
            if name == "email":
                value = value.lower()
            elif name == "phone":
                value = "".join(c for c in value if c.isdigit())
            identity = (name, value)
    # Attributes (attribute[code]) answer a service definition; ours define none, so any
    # sent (FixMyStreet sends its own extras) are accepted and left aside.
    return Submission(code, description, location, mask_personal(address),
                      [media_url] if media_url else [], identity)


def reporter_id(api_key: str, key_prefix: str, identity: tuple[str, str]) -> str:
    """Opaque and stable per client and person. Keyed with the api_key itself, which is never
    stored, so the database alone cannot turn it back into a phone number or an email."""
    kind, value = identity
    digest = hmac.new(api_key.encode("utf-8"), f"{kind}:{value}".encode(),
                      hashlib.sha256).hexdigest()
    return f"{key_prefix}:{digest[:40]}"


@open311.post("/requests.<fmt>")
async def requests_create(fmt: str) -> Response:
    fmt = _format(fmt)
    services = _services()
    form = await request.form
    api_key = _field(form, "api_key")
    key = await verify_key(services.db, api_key) if api_key else None
    if key is None:
        raise Open311Error(403, t("open311.bad_api_key"))
    sent = parse_submission(form, services.catalogue)
    # No description: the service says what it is (the spec makes description optional).
    text = sent.text or services.catalogue.get(sent.service_code).name
    try:
        result = await file_report(OneShotReport(
            CHANNEL, reporter_id(api_key, key.prefix, sent.identity), text, sent.location,
            sent.address, sent.service_code, sent.media), services)
    except ReportRejected as exc:
        raise Open311Error(400, str(exc)) from None
    case = result["case"]
    token = secrets.token_urlsafe(18)
    async with services.db.session() as session, session.begin():
        session.add(Open311Token(token=token, case_number=case["number"], api_key_id=key.id,
                                 created_at=services.cases.clock()))
    notice = t("open311.notice_attached" if result["attached"] else "open311.notice_filed",
               number=case["number"], department=case["department"],
               due=services.cases.local(datetime.fromisoformat(case["handling_due"]))
               if case["handling_due"] else "-")
    # account_id is left out on purpose: it would hand an identity back out of the API.
    return _answer(fmt, [{"service_request_id": case["number"], "token": token,
                          "service_notice": notice}], "service_requests", "request")


@open311.route("/<path:rest>", methods=["GET", "POST"])
async def not_found(rest: str) -> Response:
    """Anything else under /open311/v2/ answers in the spec's error format, not HTML."""
    raise Open311Error(404, t("open311.no_such_endpoint"))
