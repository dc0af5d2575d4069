"""The HTTP chat API for trusted front ends (web widget, mini-program back end).

Inbound: POST /api/v1/messages; outbound: the replies in the response body. Transport only:
validate, authenticate, translate to InboundMessage and back.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Blueprint, Response, current_app, jsonify, request

from adapters import guard
from bot.apikeys import verify_key
from bot.cases import ReporterRef
from bot.messages import InboundMessage, Location
from bot.outbox import updates_for
from handlers.one_shot import OneShotReport, ReportRejected, file_report
from handlers.router import handle

CHANNEL = "http"
Body = TypeVar("Body", bound=BaseModel)
api = Blueprint("api_v1", __name__, url_prefix="/api/v1")


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    coord: Literal["wgs84", "gcj02"] = "wgs84"

    def to_location(self) -> Location:
        return Location(self.lat, self.lon, self.coord)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=128)
    text: str = Field("", max_length=100_000)
    location: LocationIn | None = None
    media: list[str] = Field(default_factory=list, max_length=9)
    message_id: str = Field("", max_length=128)


def error(status: int, message: str, **extra: Any) -> Response:
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response


def is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@api.before_request
async def authenticate() -> Response | None:
    """A key from config (`api.keys`) or from the database (`gridbot apikeys add`); with no
    configured keys, loopback clients need none (as before database keys existed)."""
    keys: list[str] = current_app.config["GRIDBOT"].api.keys
    if not keys and is_loopback(request.remote_addr):
        return None
    given = request.headers.get("X-API-Key", "")
    if any(hmac.compare_digest(given, key) for key in keys):
        return None
    if given and await verify_key(current_app.config["SERVICES"].db, given) is not None:
        return None
    if not keys and not given:
        return error(403, "no X-API-Key header: without a key only loopback clients are "
                          "served")
    return error(401, "missing or wrong X-API-Key header")


NUL_ERROR = "NUL characters (\\u0000) are not accepted"


def _has_nul(value: Any) -> bool:
    """NUL cannot be stored in PostgreSQL text and has no use in a message: refuse it
    at the door (in ids, addresses, anything) rather than fail at the database."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


@api.before_request
async def refuse_nul_arguments() -> Response | None:
    values = [v for _, v in request.args.items(multi=True)]
    values += [str(v) for v in (request.view_args or {}).values()]
    if any("\x00" in v for v in values):
        return error(400, NUL_ERROR)
    return None


async def validated_body(model: type[Body]) -> Body | Response:
    """The JSON body checked against `model`, or a 400 response naming the first problem."""
    try:
        data = await request.get_json(force=True, silent=True)
    except UnicodeDecodeError:  # `silent` covers bad JSON, not bytes that are not UTF-8
        data = None
    if not isinstance(data, dict):
        return error(400, "the body must be a JSON object")
    if _has_nul(data):
        return error(400, NUL_ERROR)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        return error(400, f"{'.'.join(map(str, first['loc']))}: {first['msg']}")


@api.post("/messages")
async def post_message() -> Response:
    body = await validated_body(MessageIn)
    if isinstance(body, Response):
        return body
    if not body.text.strip() and body.location is None and not body.media:
        return error(400, "send text, a location or media")
    services = current_app.config["SERVICES"]
    if body.message_id and not await services.dedupe.first_time(
        f"{CHANNEL}:{body.user}", body.message_id
    ):
        return error(409, "this message_id was already processed")
    location = body.location.to_location() if body.location is not None else None
    msg = InboundMessage(CHANNEL, body.user, body.text, location, body.media, body.message_id)
    outcome = await handle(msg, services)
    return jsonify(outcome.as_dict())


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1, max_length=100_000)
    location: LocationIn | None = None
    address: str = Field("", max_length=200)
    item_code: str | None = Field(None, max_length=16)
    media: list[str] = Field(default_factory=list, max_length=9)
    report_id: str = Field("", max_length=128)


@api.post("/reports")
async def post_report() -> Response:
    """File a report in one request; 201 with the case, or 422 saying what is missing."""
    body = await validated_body(ReportIn)
    if isinstance(body, Response):
        return body
    services = current_app.config["SERVICES"]
    # The user's rate limit and the report id's first-time check in one Redis round trip
    # (the busiest route: guard.limit_api_user leaves this one to us).
    seen_as = f"{CHANNEL}-report:{body.user}"
    mark = services.dedupe.key(seen_as, body.report_id) if body.report_id else ""
    verdict, new = await guard.user_verdict_and_mark(services, CHANNEL, body.user, mark)
    if not verdict.allowed:
        if new:  # refused before anything was filed: a retry may reuse the id
            await services.dedupe.forget(seen_as, body.report_id)
        return guard.too_many(verdict, "for this user")
    if mark and not new:
        return error(409, "this report_id was already filed")
    location = body.location.to_location() if body.location is not None else None
    try:
        result = await file_report(OneShotReport(
            CHANNEL, body.user, body.text, location, body.address, body.item_code, body.media,
        ), services)
    except ReportRejected as exc:
        if body.report_id:  # nothing was filed: the corrected report may reuse its id
            await services.dedupe.forget(seen_as, body.report_id)
        return error(422, str(exc))
    response = jsonify(result)
    response.status_code = 201
    return response


@api.get("/cases/<number>")
async def get_case(number: str) -> Response:
    user = request.args.get("user", "")
    services = current_app.config["SERVICES"]
    case = await services.cases.get(number, ReporterRef(CHANNEL, user)) if user else None
    if case is None:
        return error(404, "no such case for this user")
    return jsonify(services.cases.public_view(case))


@api.get("/updates")
async def get_updates() -> Response:
    """Status updates for a user's cases, for front ends that poll (`after` = last id seen)."""
    user = request.args.get("user", "")
    after = request.args.get("after", "0")
    # ASCII digits only ("²".isdigit() is true, int("²") fails), at most 18 of them.
    if not user or not (after.isascii() and after.isdigit() and len(after) <= 18):
        return error(400, "give user and a numeric after")
    services = current_app.config["SERVICES"]
    # Ids are 32-bit on PostgreSQL: a larger `after` simply means "nothing newer".
    last_seen = min(int(after), 2**31 - 1)
    return jsonify({"updates": await updates_for(services.db, CHANNEL, user, last_seen)})


@api.get("/grids")
async def get_grids() -> Response:
    return jsonify(current_app.config["SERVICES"].grids.feature_collection())
