"""The HTTP chat API for trusted front ends (web widget, mini-program back end).

Inbound: POST /api/v1/messages; outbound: the replies in the response body. Transport only:
validate, authenticate, translate to InboundMessage and back.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Blueprint, Response, jsonify, request

from adapters import app_state, guard, inbound
from adapters.json_body import json_or_none
from bot.apikeys import verify_key
from bot.cases import MAX_MEDIA_REF, ReporterRef
from bot.config import is_loopback
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


# case_media.ref holds 500 characters: a longer reference is refused at the door (400).
MediaRef = Annotated[str, Field(min_length=1, max_length=MAX_MEDIA_REF)]


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=128)
    text: str = Field("", max_length=100_000)
    location: LocationIn | None = None
    media: list[MediaRef] = Field(default_factory=list, max_length=9)
    message_id: str = Field("", max_length=128)


def error(status: int, message: str, **extra: Any) -> Response:
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response


WRONG_KEY = "missing or wrong X-API-Key header"


def _same_key(given: str, key: str) -> bool:
    """Constant time, on bytes: hmac.compare_digest raises TypeError for a str with
    non-ASCII characters, which a header can carry (that was a 500)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                               key.encode("utf-8", "surrogateescape"))


async def key_check(scope: str) -> Response | None:
    """None when the request may go on to an API of `scope` (chat, suggest): a key from
    config (`api.keys`, full access), or a database key (`gridbot apikeys add`) whose scopes
    include it (or admin); with no configured keys, loopback clients need none. The client
    address is guard.client_address: behind a trusted proxy, the client's, not the proxy's."""
    from bot.apikeys import find_key

    config = app_state.config()
    keys: list[str] = config.api.keys
    if not keys and is_loopback(guard.client_address(config)):
        return None
    given = request.headers.get("X-API-Key", "")
    if not (given.isascii() and given.isprintable()):
        return error(401, WRONG_KEY)  # no key of ours looks like that
    if any(_same_key(given, key) for key in keys):
        return None
    if given:
        db = app_state.services().db
        if await verify_key(db, given, scope=scope) is not None:
            return None
        found = await find_key(db, given)
        if found is not None:
            return error(403, f"this API key may not use the {scope} API (its scopes: "
                              f"{', '.join(found.scopes)}); `gridbot apikeys set-scopes` "
                              "changes them")
    if not keys and not given:
        return error(403, "no X-API-Key header: without a key only loopback clients are "
                          "served")
    return error(401, WRONG_KEY)


async def authenticate_suggest() -> Response | None:
    """The gate of the suggest API (adapters/suggest_api.py): the suggest scope."""
    return await key_check("suggest")


@api.before_request
async def authenticate() -> Response | None:
    """The chat API's gate: the chat scope (see key_check)."""
    return await key_check("chat")


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
    data = await json_or_none()
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
    services = app_state.services()
    if body.message_id and not await inbound.first_time(
        services, f"{CHANNEL}:{body.user}", body.message_id
    ):
        return error(409, "this message_id was already processed")
    location = body.location.to_location() if body.location is not None else None
    msg = InboundMessage(CHANNEL, body.user, body.text, location, body.media, body.message_id)
    # Limited per user by guard.limit_api_user (a 429, not a chat message).
    outcome = await handle(msg, services)
    return jsonify(outcome.as_dict())


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1, max_length=100_000)
    location: LocationIn | None = None
    address: str = Field("", max_length=200)
    item_code: str | None = Field(None, max_length=16)
    media: list[MediaRef] = Field(default_factory=list, max_length=9)
    report_id: str = Field("", max_length=128)


@api.post("/reports")
async def post_report() -> Response:
    """File a report in one request; 201 with the case, or 422 saying what is missing."""
    body = await validated_body(ReportIn)
    if isinstance(body, Response):
        return body
    services = app_state.services()
    # The busiest route counts its user's hit itself (guard.limit_api_user leaves it to us).
    verdict = await guard.user_verdict(services, CHANNEL, body.user)
    if not verdict.allowed:
        return guard.too_many(verdict, "for this user")
    location = body.location.to_location() if body.location is not None else None
    try:
        result = await file_report(OneShotReport(
            CHANNEL, body.user, body.text, location, body.address, body.item_code, body.media,
            body.report_id), services)
    except ReportRejected as exc:
        return error(422, str(exc))
    # report_id means "filed" (stored in the filing's transaction): a retry of a filed
    # report gets 409 with the case it filed; a retry of a failed one files it now.
    if result.pop("replayed"):
        return error(409, "this report_id was already filed", case=result["case"])
    response = jsonify(result)
    response.status_code = 201
    return response


@api.get("/cases/<number>")
async def get_case(number: str) -> Response:
    user = request.args.get("user", "")
    services = app_state.services()
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
    services = app_state.services()
    # Ids are 32-bit on PostgreSQL: a larger `after` simply means "nothing newer".
    last_seen = min(int(after), 2**31 - 1)
    return jsonify({"updates": await updates_for(services.db, CHANNEL, user, last_seen)})


@api.get("/grids")
async def get_grids() -> Response:
    return jsonify(app_state.services().grids.feature_collection())
