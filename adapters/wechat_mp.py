"""WeChat mini-program (小程序) API: login by code2session, then reports and cases as JSON.

Inbound: the mini-program's requests, each (but login) with a signed session token. A report
runs the same dialog as chat, under channel "mp" for that openid: the answer is the dialog's
Outcome, and a follow-up (`/reports/reply`) answers its questions (category, place, confirm).
Outbound: subscribe messages, only while the user has granted the template (one grant, one
message — WeChat's rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Blueprint, Response, jsonify, request
from wechatpy.exceptions import WeChatClientException

from adapters import app_state, case_photos, inbound
from adapters.http_api import error
from adapters.json_body import json_or_none
from adapters.wechat_api import WechatApi, media_bytes, official_api
from bot import kv
from bot.actions import ActionRefused
from bot.cases import CaseDraft, CaseNotFound, RatingRefused, ReporterRef
from bot.config import Config, WechatConfig
from bot.coords import wgs84_to_gcj02
from bot.kv import PREFIX
from bot.media import (
    MEDIA_DIR,
    MP_FOLDER,
    ORPHAN_AGE_S,
    PhotoLimits,
    PhotoQuota,
    PhotoRefused,
    check_photo,
    referenced,
    remove_files,
)
from bot.media_store import MediaStore, open_store, stored_key
from bot.messages import InboundMessage, Location, Outcome
from bot.models import Case
from bot.nearby import NotFollowable, follow, open_cases_near
from bot.outbox import Notice, PermanentDeliveryError
from bot.periodic import sweep_media
from bot.services import Services
from bot.texts import t
from bot.worker_codes import redeem_worker_code
from handlers.router import MAX_MEDIA_PER_REPORT
from handlers.steps import Draft, Step, step_of

log = logging.getLogger(__name__)

CHANNEL = MP_FOLDER  # "mp": the channel, and its photos' folder under var/media
# The steps at which a pin sent with the report answers "where?" (or moves the place).
PLACE_STEPS = frozenset({Step.CHOOSE_ITEM, Step.AWAIT_LOCATION, Step.CHOOSE_PLACE, Step.CONFIRM})
# A multipart report's fields (JSON ones are ReportIn's); the photos come as "photos".
FORM_FIELDS = {"text", "address", "community", "lat", "lon", "coord", "confirm"}
PHOTO_FIELD = "photos"
PHOTO_PATH = "/api/mp/photos/"  # + a signed token: <image src> sends no Authorization
GRANT_TTL_S = 365 * 24 * 3600
blueprint = Blueprint("wechat_mp", __name__)


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    coord: Literal["wgs84", "gcj02"] = "gcj02"  # wx.getLocation's type 'gcj02'


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000)
    location: LocationIn | None = None
    address: str = Field("", max_length=200)
    community: str = Field("", max_length=32)  # the QR code's scene, when scanned from one
    confirm: bool = False  # file at once when the dialog gets to its confirmation


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field("", max_length=2000)
    location: LocationIn | None = None


class FollowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(min_length=1, max_length=32)


class BindIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=4, max_length=16)


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score: int = Field(ge=1, le=5)
    note: str = Field("", max_length=500)


@dataclass
class StoredPhotos:
    """The photos one report request wrote, and the quota they took."""
    paths: list[Path] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    quota_key: str | None = None


@dataclass
class MiniProgram:
    services: Services
    config: WechatConfig
    api: WechatApi
    signer: URLSafeTimedSerializer
    media_dir: Path
    photo_signer: URLSafeTimedSerializer | None = None  # its own salt: no token is both
    # The orphan-photo sweep this channel started: (stop event, task).
    sweep: tuple[asyncio.Event, asyncio.Task[None]] | None = None
    s3: MediaStore | None = None  # the shared bucket, when photos live in one

    def token_for(self, openid: str) -> str:
        return self.signer.dumps({"openid": openid})

    def openid_of(self, token: str) -> str | None:
        try:
            data = self.signer.loads(token, max_age=self.config.session_ttl_s)
        except (SignatureExpired, BadSignature):
            return None
        return data.get("openid") if isinstance(data, dict) else None

    # -- the case page: the handler's after-photos on its timeline --------------------------

    def photo_path(self, number: str, media_id: int) -> str:
        """A link to one after-photo, made only for the case's reporter. It names no one (the
        path is in access logs): the signature says the server gave it out."""
        assert self.photo_signer is not None
        return PHOTO_PATH + self.photo_signer.dumps([number, media_id])

    def photo_of(self, token: str) -> tuple[str, int] | None:
        """(case number, media id) a photo link was made for, while it is valid."""
        assert self.photo_signer is not None
        try:
            data = self.photo_signer.loads(token, max_age=self.config.session_ttl_s)
        except (SignatureExpired, BadSignature):
            return None
        if not (isinstance(data, list) and len(data) == 2 and isinstance(data[1], int)):
            return None
        return str(data[0]), data[1]

    def case_view(self, case: Case) -> dict[str, Any]:
        """The case as its reporter sees it, each 办结 on the timeline with the photos its
        handler sent (thumbnail and full-size links, valid as long as a session). A follower
        sees the status only: no photos."""
        view = self.services.cases.public_view(case)
        if not view["own"]:
            return view
        handled = [e for e in case.events if e.to_status == "handled"]
        entries = [e for e in view["timeline"] if e["status"] == "handled"]
        since = None
        for event, entry in zip(handled, entries, strict=False):
            # What the handler added up to this 办结 (and after the one before): after-photos.
            taken = [m for m in case.media if m.added_by != "citizen"
                     and m.created_at <= event.at and (since is None or m.created_at > since)]
            entry["photos"] = [{"thumb": self.photo_path(case.number, m.id) + "?size=thumb",
                                "full": self.photo_path(case.number, m.id)}
                               for m in sorted(taken, key=lambda m: m.id)]
            since = event.at
        return view

    async def login(self, code: str) -> str:
        session = await self.api.call(lambda c: c.wxa.code_to_session(code))
        return session["openid"]

    async def turn(self, openid: str, text: str = "", location: Location | None = None,
                   media: list[str] | None = None) -> Outcome:
        return await inbound.converse(
            self.services, InboundMessage(CHANNEL, openid, text, location, media or []))

    async def report(self, openid: str, body: ReportIn, media: list[str]) -> dict[str, Any]:
        """A fresh report in as few turns as the dialog allows: describe (+ photos), give
        the place, and confirm when asked to."""
        await self.services.dialogs.clear(CHANNEL, openid)  # a new report starts clean
        address = body.address
        if not address and body.location is None and body.community and \
                self.services.locator.from_text(body.text).status != "found":
            # Scanned from a community's code, and the words alone say no one place: the
            # community bounds them (its grid, a place named inside it, else its main grid).
            area = self.services.grids.get(body.community)
            address = area.name if area is not None else ""
        text = f"{body.text} {address}".strip() if address else body.text
        outcome = await self.turn(openid, text, media=media)
        step = await self.step(openid)
        if body.location is not None and step in PLACE_STEPS:
            loc = body.location
            outcome = await self.turn(openid, location=Location(loc.lat, loc.lon, loc.coord))
            step = await self.step(openid)
        if body.confirm and step == Step.CONFIRM:
            outcome = await self.turn(openid, t("button.confirm"))
            step = await self.step(openid)
        return {**outcome.as_dict(), "step": step}

    async def step(self, openid: str) -> Step | None:
        return step_of(cast(Draft, await self.services.dialogs.load(CHANNEL, openid)))

    async def draft(self, openid: str) -> CaseDraft | None:
        """The report waiting for its confirmation (item and place known), as a draft."""
        state = await self.services.dialogs.load(CHANNEL, openid)
        spot, item = state.get("spot"), state.get("item")
        if step_of(cast(Draft, state)) != Step.CONFIRM or not isinstance(spot, dict) or not item:
            return None
        media = [m for m in state.get("media") or [] if isinstance(m, str)]
        return CaseDraft(text=str(state.get("text", "")), item_code=str(item),
                         grid_code=str(spot.get("grid", "")), lat=spot.get("lat"),
                         lon=spot.get("lon"), address=str(spot.get("address") or ""),
                         media=media)

    async def nearby(self, openid: str) -> list[dict[str, Any]]:
        """Open cases of the same item near the waiting report, in public words only: no
        reporter's words, address or photos."""
        draft = await self.draft(openid)
        if draft is None or draft.lat is None or draft.lon is None:
            return []
        cases = self.services.cases
        found = await open_cases_near(cases, draft.item_code, draft.lat, draft.lon,
                                      self.config.mp_nearby_radius_m)
        out = []
        for near in found:
            view = cases.public_view(near.case, with_timeline=False, own=False)
            out.append({k: view[k] for k in ("number", "status", "status_label", "item",
                                             "grid", "created_at")}
                       | {"distance_m": round(near.distance_m)})
        return out

    # -- photos -----------------------------------------------------------------------------

    def quota(self) -> PhotoQuota:
        return PhotoQuota(self.services.redis, self.config.mp_photos_per_day,
                          self.config.mp_photo_bytes_per_day,
                          self.services.config.cases.timezone, self.services.cases.clock)

    async def store_photos(self, openid: str, photos: list[bytes]) -> StoredPhotos:
        """Check every photo (PhotoRefused, with `n` the photo's number, names the first
        that fails), take them from the user's daily quota (PhotoRefused "mp.photo_quota"),
        then write them. Nothing is left behind when any step fails."""
        stored = StoredPhotos()
        if not photos:
            return stored
        limits = PhotoLimits(self.config.mp_photo_max_bytes, self.config.mp_photo_max_pixels)
        suffixes = await asyncio.to_thread(_check_all, photos, limits)
        total = sum(map(len, photos))
        quota = self.quota()
        stored.quota_key = await quota.reserve(openid, len(photos), total)
        if stored.quota_key is None:
            raise PhotoRefused("mp.photo_quota", files=quota.files_per_day,
                               mb=f"{quota.bytes_per_day / 1_048_576:g}")
        for data, suffix in zip(photos, suffixes, strict=True):
            name = f"{uuid.uuid4().hex}.{suffix}"
            stored.paths.append(self.media_dir / CHANNEL / name)
            stored.refs.append(f"{MEDIA_DIR}/{CHANNEL}/{name}")
            stored.sizes.append(len(data))
        try:
            await asyncio.to_thread(_write_all, stored.paths, photos)
            if self.s3 is not None:  # the other servers (and their cards) read the bucket
                for ref, data in zip(stored.refs, photos, strict=True):
                    key = stored_key(ref)
                    if key:
                        await self.s3.put(key, data)
        except BaseException:
            await self.discard(stored)
            raise
        return stored

    async def discard(self, stored: StoredPhotos, keep: set[str] | frozenset[str] = frozenset(),
                      ) -> None:
        """Remove the photos of a request that failed or kept them for nothing (but those
        in `keep`), and give their quota back."""
        gone = [i for i, ref in enumerate(stored.refs) if ref not in keep]
        if not gone:
            return
        remove_files([stored.paths[i] for i in gone])  # first, and without awaiting
        if stored.quota_key is not None:
            with contextlib.suppress(Exception):
                await self.quota().release(stored.quota_key, len(gone),
                                           sum(stored.sizes[i] for i in gone))

    async def held_by_dialog(self, openid: str) -> set[str]:
        """The media references the user's unfinished report holds."""
        media = (await self.services.dialogs.load(CHANNEL, openid)).get("media")
        return {ref for ref in media if isinstance(ref, str)} if isinstance(media, list) \
            else set()

    # -- outbound: subscribe messages -------------------------------------------------------

    def _grant_key(self, openid: str) -> str:
        return f"{PREFIX}mpgrant:{self.config.mp_subscribe_template_id}:{openid}"

    async def granted(self, openid: str, template_id: str, count: int) -> int:
        if template_id != self.config.mp_subscribe_template_id:
            return 0
        key = self._grant_key(openid)
        total = await self.services.redis.incrby(key, count)
        await self.services.redis.expire(key, GRANT_TTL_S)
        return int(total)

    async def send(self, notice: Notice) -> None:
        openid = notice.recipient
        template = self.config.mp_subscribe_template_id
        if not openid or not template:
            raise PermanentDeliveryError("no mini-program user or subscribe template")
        if await self.services.redis.decr(self._grant_key(openid)) < 0:
            await self.services.redis.incr(self._grant_key(openid))
            # WeChat allows one message per grant; the app shows updates in GET /cases.
            raise PermanentDeliveryError("the user has no subscribe grant left")
        status = notice.payload.get("status", "")
        data = {"character_string1": {"value": notice.payload.get("case", "")},
                "phrase2": {"value": t(f"status.{status}")[:5] if status else ""},
                "thing3": {"value": notice.text[:20]}}
        page = f"pages/case/index?number={notice.payload.get('case', '')}"  # miniprogram/
        try:
            await self.api.call(lambda c: c.wxa.send_subscribe_message(
                openid, template, data, page=page))
        except WeChatClientException as exc:
            if exc.errcode in (43101, 40003):  # refused, or not a user of this app
                raise PermanentDeliveryError(f"WeChat {exc.errcode}") from exc
            await self.services.redis.incr(self._grant_key(openid))  # not used up: retry
            raise


def _check_all(photos: list[bytes], limits: PhotoLimits) -> list[str]:
    suffixes = []
    for n, data in enumerate(photos, start=1):
        try:
            suffixes.append(check_photo(data, limits))
        except PhotoRefused as exc:
            exc.values["n"] = n
            raise
    return suffixes


def _write_all(paths: list[Path], photos: list[bytes]) -> None:
    try:
        for path, data in zip(paths, photos, strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    except BaseException:
        remove_files(paths)  # a full disk leaves no half of a request behind
        raise


async def start(services: Services) -> None:
    await stop(services)
    cfg = services.config.wechat
    if not (cfg.mp_app_id and cfg.session_secret):
        services.channels.pop(CHANNEL, None)
        return
    api = official_api(cfg.mp_app_id, cfg.mp_app_secret, cfg.api_base_url, services.redis)
    mp = MiniProgram(services, cfg, api,
                     URLSafeTimedSerializer(cfg.session_secret, salt="gridbot-mp-session"),
                     services.config.path(services.config.media.local_dir),
                     URLSafeTimedSerializer(cfg.session_secret, salt="gridbot-mp-photo"),
                     s3=open_store(services.config) if services.config.media.store == "s3"
                     else None)
    services.channels[CHANNEL] = mp
    services.outbox.register(CHANNEL, mp.send)
    if cfg.mp_media_sweep_interval_s:
        # Orphan photos (a report never filed, a server stopped mid-request) are removed
        # once over an hour old — and older than a half-finished report may wait.
        done = asyncio.Event()
        min_age_s = max(ORPHAN_AGE_S, services.config.redis.dialog_ttl_s)
        task = asyncio.create_task(sweep_media(
            services.db, lambda: mp.media_dir / CHANNEL, done, cfg.mp_media_sweep_interval_s,
            log, services.redis, min_age_s))
        mp.sweep = (done, task)


async def stop(services: Services) -> None:
    """End the orphan sweep (channels.stop_all calls this when the server stops)."""
    mp = channel_for(services)
    if mp is None or mp.sweep is None:
        return
    (done, task), mp.sweep = mp.sweep, None
    if task.done() or task.get_loop() is not asyncio.get_running_loop():
        return  # over, or of an event loop gone by
    done.set()
    await asyncio.wait([task], timeout=5)
    task.cancel()  # (when it did not end in time)


def channel_for(services: Services) -> MiniProgram | None:
    return services.channels.get(CHANNEL)


def _validation_error(exc: ValidationError) -> Response:
    first = exc.errors()[0]
    return error(400, f"{'.'.join(map(str, first['loc']))}: {first['msg']}")


def _mp() -> MiniProgram | None:
    return channel_for(app_state.services())


def _openid(mp: MiniProgram) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return mp.openid_of(token.strip()) if scheme.lower() == "bearer" and token else None


def _configured() -> MiniProgram:
    """The channel, in a route `authenticate` let through (it answers 404 without one)."""
    mp = _mp()
    if mp is None:
        raise RuntimeError("the mini-program API is not configured (authenticate runs first)")
    return mp


def _caller() -> tuple[MiniProgram, str]:
    """The channel and the caller's openid, in a route `authenticate` let through (it answers
    401 without a valid session token)."""
    mp = _configured()
    openid = _openid(mp)
    if openid is None:
        raise RuntimeError("no valid session token (authenticate runs first)")
    return mp, openid


async def _json_object() -> dict[str, Any] | None:
    data = await json_or_none()
    return data if isinstance(data, dict) else None


@blueprint.before_request
async def authenticate() -> Response | None:
    mp = _mp()
    if request.path == "/api/openapi.json":
        return None
    if mp is None:
        return error(404, "the mini-program API is not configured")
    if request.path == "/api/mp/login" or request.path.startswith(PHOTO_PATH):
        return None  # (a photo link carries its own signed token)
    if _openid(mp) is None:
        return error(401, "missing, expired or invalid session token (Authorization: Bearer)")
    return None


@blueprint.post("/api/mp/login")
async def login() -> Response:
    mp = _configured()
    data = await _json_object()
    code = data.get("code") if data else None
    if not isinstance(code, str) or not code or len(code) > 128:
        return error(400, "give the code from wx.login()")
    try:
        openid = await mp.login(code)
    except WeChatClientException as exc:
        return error(401, f"WeChat refused the code ({exc.errcode})")
    return jsonify({"token": mp.token_for(openid), "expires_in": mp.config.session_ttl_s})


async def _stored_or_refused(mp: MiniProgram, openid: str,
                             photos: list[bytes]) -> StoredPhotos | Response:
    """The photos checked and stored, or the answer saying which one was refused and why
    (429 when the day's quota is used up)."""
    try:
        return await mp.store_photos(openid, photos)
    except PhotoRefused as exc:
        status = 429 if exc.key == "mp.photo_quota" else 400
        return error(status, t(exc.key, **exc.values), field=PHOTO_FIELD)


@blueprint.post("/api/mp/reports")
async def post_report() -> Response:
    """The whole request is checked before a byte is stored: fields, text and place, then
    every photo (really an image, within the caps), then the user's daily quota. Photos a
    failed request or a report that came to nothing stored are removed again."""
    mp, openid = _caller()
    photos: list[bytes] = []
    if request.mimetype == "multipart/form-data":
        form = await request.form
        files = await request.files
        unknown = sorted((set(form) - FORM_FIELDS) | (set(files) - {PHOTO_FIELD}))
        if unknown:
            return error(400, t("mp.unknown_field", name=unknown[0][:40]))
        uploads = files.getlist(PHOTO_FIELD)
        if len(uploads) > MAX_MEDIA_PER_REPORT:
            return error(400, t("mp.too_many_photos", max=MAX_MEDIA_PER_REPORT))
        raw: dict[str, Any] = {k: form[k] for k in ("text", "address", "community") if k in form}
        if "lat" in form or "lon" in form:
            raw["location"] = {"lat": form.get("lat"), "lon": form.get("lon"),
                               "coord": form.get("coord", "gcj02")}
        raw["confirm"] = form.get("confirm", "") in ("1", "true", "yes")
        # One byte past the cap is enough to refuse a photo as too large.
        photos = [upload.read(mp.config.mp_photo_max_bytes + 1) for upload in uploads]
    else:
        raw = await _json_object() or {}
    try:
        body = ReportIn.model_validate(raw)
    except ValidationError as exc:
        return _validation_error(exc)
    if not body.text.strip():
        return error(400, t("mp.text_required"), field="text")
    stored = await _stored_or_refused(mp, openid, photos)
    if isinstance(stored, Response):
        return stored
    try:
        answer = await mp.report(openid, body, stored.refs)
    except BaseException:
        # The report failed (storage, or the client went away): keep nothing — but what a
        # case filed before the failure refers to, when that can still be told.
        keep: set[str] = set()
        with contextlib.suppress(Exception):
            keep = await asyncio.wait_for(referenced(mp.services.db, stored.refs), 5)
        await mp.discard(stored, keep=keep)
        raise
    if stored.refs and answer.get("case") is None:
        # Not filed (refused, cancelled, not a report): only a dialog that waits for the
        # place or a confirmation (or keeps a draft whose filing failed, to confirm again)
        # still needs them; once it expires the sweep takes them.
        await mp.discard(stored, keep=await mp.held_by_dialog(openid))
    return jsonify(answer)


@blueprint.post("/api/mp/reports/reply")
async def reply_report() -> Response:
    """Answer the dialog's question: a category number, a place, 确认 or 取消."""
    try:
        body = ReplyIn.model_validate(await _json_object() or {})
    except ValidationError as exc:
        return _validation_error(exc)
    if not body.text.strip() and body.location is None:
        return error(400, "send text or a location")
    mp, openid = _caller()
    loc = body.location
    outcome = await mp.turn(openid, body.text,
                            Location(loc.lat, loc.lon, loc.coord) if loc else None)
    return jsonify({**outcome.as_dict(), "step": await mp.step(openid)})


@blueprint.post("/api/mp/reports/photos")
async def add_photos() -> Response:
    """More photos for the report under way (wx.uploadFile sends one file a request)."""
    mp, openid = _caller()
    if request.mimetype != "multipart/form-data":
        return error(400, t("mp.photo_required"), field=PHOTO_FIELD)
    files = await request.files
    uploads = files.getlist(PHOTO_FIELD)
    if not uploads or set(files) - {PHOTO_FIELD}:
        return error(400, t("mp.photo_required"), field=PHOTO_FIELD)
    if await mp.step(openid) is None:
        return error(409, t("mp.no_report"))
    held = len(await mp.held_by_dialog(openid))
    if held + len(uploads) > MAX_MEDIA_PER_REPORT:
        return error(400, t("mp.too_many_photos", max=MAX_MEDIA_PER_REPORT), field=PHOTO_FIELD)
    photos = [upload.read(mp.config.mp_photo_max_bytes + 1) for upload in uploads]
    stored = await _stored_or_refused(mp, openid, photos)
    if isinstance(stored, Response):
        return stored
    try:
        await mp.turn(openid, media=stored.refs)
    finally:
        await mp.discard(stored, keep=await mp.held_by_dialog(openid))
    return jsonify({"photos": len(await mp.held_by_dialog(openid)),
                    "step": await mp.step(openid)})


@blueprint.get("/api/mp/reports/nearby")
async def nearby_cases() -> Response:
    """「是这个吗？」: open cases of the same kind near the report waiting for its 确认."""
    mp, openid = _caller()
    return jsonify({"cases": await mp.nearby(openid),
                    "radius_m": mp.config.mp_nearby_radius_m})


@blueprint.post("/api/mp/reports/follow")
async def follow_case() -> Response:
    """Follow one of the nearby cases instead of filing the waiting report as a new one:
    the report (words, place, photos) joins that case, and its updates come to this user."""
    mp, openid = _caller()
    try:
        body = FollowIn.model_validate(await _json_object() or {})
    except ValidationError as exc:
        return _validation_error(exc)
    draft = await mp.draft(openid)
    if draft is None:
        return error(409, t("mp.no_report"))
    if body.number not in {c["number"] for c in await mp.nearby(openid)}:
        return error(409, t("mp.not_followable"))
    try:
        case = await follow(mp.services.cases, body.number, draft, ReporterRef(CHANNEL, openid))
    except (CaseNotFound, NotFollowable):
        return error(409, t("mp.not_followable"))
    await mp.services.dialogs.clear(CHANNEL, openid)
    return jsonify({"case": mp.services.cases.public_view(case, with_timeline=False,
                                                          own=False),
                    "followed": True})


@blueprint.get("/api/mp/communities/<code>")
async def community(code: str) -> Response:
    """The community a QR code's scene names: its name, and a point inside it (GCJ-02, for
    wx.chooseLocation to open the map there)."""
    mp = _configured()
    area = mp.services.grids.get(code[:32])
    if area is None or area.level not in ("community", "area", "street"):
        return error(404, t("mp.unknown_community"))
    # A community opens the map where a report naming it alone is put (its main grid).
    centre = mp.services.grids.community_centre(area.code)
    point = area.geometry.representative_point()
    lat, lon = wgs84_to_gcj02(*((centre.lat, centre.lon) if centre else (point.y, point.x)))
    return jsonify({"code": area.code, "name": area.name, "level": area.level,
                    "center": {"lat": round(lat, 6), "lon": round(lon, 6), "coord": "gcj02"}})


@blueprint.get("/api/mp/cases")
async def list_cases() -> Response:
    mp, openid = _caller()
    cases = await mp.services.cases.for_reporter(ReporterRef(CHANNEL, openid), limit=50)
    return jsonify({"cases": [mp.services.cases.public_view(c, with_timeline=False)
                              for c in cases]})


@blueprint.get("/api/mp/cases/<number>")
async def get_case(number: str) -> Response:
    mp, openid = _caller()
    case = await mp.services.cases.get(number, ReporterRef(CHANNEL, openid))
    if case is None:
        return error(404, "no such case among yours")
    return jsonify(mp.case_view(case))


@blueprint.get(f"{PHOTO_PATH}<token>")
async def case_photo(token: str) -> Response:
    """A handler's after-photo, by the signed link the reporter's case page got (`<image>`
    and wx.previewImage send no Authorization header). 404 when the link is forged or
    expired, or names anything but an after-photo of that case."""
    mp = _configured()
    signed = mp.photo_of(token)
    if signed is None:
        return error(404, t("mp.photo_gone"))
    number, media_id = signed
    case = await mp.services.cases.get(number)
    media = next((m for m in case.media if m.id == media_id and m.added_by != "citizen"),
                 None) if case is not None else None
    if media is None:
        return error(404, t("mp.photo_gone"))
    data = await case_photos.case_photo(mp.services, media.ref)
    answer = await case_photos.photo_response(data, thumb=request.args.get("size") == "thumb")
    return answer if answer is not None else error(404, t("mp.photo_gone"))


@blueprint.post("/api/mp/cases/<number>/rating")
async def rate_case(number: str) -> Response:
    mp, openid = _caller()
    try:
        body = RatingIn.model_validate(await _json_object() or {})
    except ValidationError as exc:
        return _validation_error(exc)
    try:
        case = await mp.services.cases.rate(number, ReporterRef(CHANNEL, openid),
                                            body.score, body.note)
    except CaseNotFound:
        return error(404, "no such case among yours")
    except RatingRefused:
        return error(409, "only a closed case not yet rated can be rated")
    return jsonify(mp.services.cases.public_view(case, with_timeline=False))


# -- worker mode: a grid worker's patrol reports (巡查上报) and 即办 ----------------------------
# A bound worker's report through /api/mp/reports is filed as a patrol report (the dialog
# knows them: handlers/report.py); it is then handed on as dispatched, or closed on the spot.

def _worker_view(services: Services, worker: Any) -> dict[str, Any]:
    kind, _, ref = worker.scope.partition(":")
    area = services.grids.get(ref) if kind in ("grid", "street", "district") else None
    return {"name": worker.name, "role": worker.role,
            "area": {"code": area.code, "name": area.name} if area else None}


@blueprint.get("/api/mp/worker")
async def who_works() -> Response:
    """The caller as a worker (name, role, area), or null: a citizen."""
    mp, openid = _caller()
    worker = await mp.services.teams.worker(CHANNEL, openid)
    return jsonify({"worker": _worker_view(mp.services, worker) if worker else None})


@blueprint.post("/api/mp/worker/bind")
async def bind_worker() -> Response:
    """A one-time code (`gridbot wechat worker-code WORKER_ID`) makes this openid that worker."""
    mp, openid = _caller()
    try:
        body = BindIn.model_validate(await _json_object() or {})
    except ValidationError:
        return error(400, t("mp.bind_failed"), field="code")
    worker = await redeem_worker_code(mp.services.teams, body.code, CHANNEL, openid,
                                      mp.services.cases.clock())
    if worker is None:
        return error(404, t("mp.bind_failed"), field="code")
    return jsonify({"worker": _worker_view(mp.services, worker)})


@blueprint.post("/api/mp/worker/cases/<number>/on-spot")
async def on_spot(number: str) -> Response:
    """即办: the worker closes their own find on the spot with the after-photo(s) and a note
    (multipart: photos, note); the before-photo is the report's."""
    mp, openid = _caller()
    worker = await mp.services.teams.worker(CHANNEL, openid)
    if worker is None:
        return error(403, t("mp.not_worker"))
    if request.mimetype != "multipart/form-data":
        return error(400, t("mp.after_photo_required"), field=PHOTO_FIELD)
    form, files = await request.form, await request.files
    uploads = files.getlist(PHOTO_FIELD)
    if not uploads or set(files) - {PHOTO_FIELD} or set(form) - {"note"}:
        return error(400, t("mp.after_photo_required"), field=PHOTO_FIELD)
    if len(uploads) > MAX_MEDIA_PER_REPORT:
        return error(400, t("mp.too_many_photos", max=MAX_MEDIA_PER_REPORT), field=PHOTO_FIELD)
    note = str(form.get("note", ""))[:500].strip()
    stored = await _stored_or_refused(
        mp, openid, [u.read(mp.config.mp_photo_max_bytes + 1) for u in uploads])
    if isinstance(stored, Response):
        return stored
    try:
        case = await mp.services.actions.resolve(number[:32], worker, note, stored.refs)
    except ActionRefused as refused:
        await mp.discard(stored)
        return error(409, refused.text())
    except BaseException:
        await mp.discard(stored)
        raise
    return jsonify({"case": mp.services.cases.public_view(case, with_timeline=False)})


@blueprint.post("/api/mp/subscriptions")
async def subscribed() -> Response:
    """What wx.requestSubscribeMessage answered: one 'accept' = one update we may push."""
    mp, openid = _caller()
    data = await _json_object() or {}
    template, accepted = data.get("template_id"), data.get("accepted", 1)
    if not isinstance(template, str) or not isinstance(accepted, int) or not 0 < accepted < 100:
        return error(400, "give template_id and accepted (how many grants)")
    total = await mp.granted(openid, template, accepted)
    return jsonify({"grants": total})


async def make_qrcode(config: Config, community: str) -> bytes:
    """`gridbot qrcode`: a mini-program code whose scene is the community's code."""
    cfg = config.wechat
    if not cfg.mp_app_id or not cfg.mp_app_secret:
        raise ValueError("wechat.mp_app_id and wechat.mp_app_secret are needed")
    if not community or len(community) > 32:  # WeChat's scene holds 32 characters
        raise ValueError("a community code of at most 32 characters is needed")
    redis = kv.connect(config.redis.url)
    try:
        api = official_api(cfg.mp_app_id, cfg.mp_app_secret, cfg.api_base_url, redis)
        return media_bytes(await api.call(lambda c: c.wxa.get_wxa_code_unlimited(
            community, page="pages/report/index")))
    finally:
        await redis.aclose()


# -- OpenAPI ----------------------------------------------------------------------------------

def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {"400": _answer("bad request", _ref("Error")),
           "401": _answer("no valid session token", _ref("Error"))}
_AUTH: list[dict[str, list[str]]] = [{"session": []}]

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "gridbot mini-program API", "version": "1.0.0",
             "description": "Reports and cases for the WeChat mini-program. Log in with the "
                            "code from wx.login(); send the token as Authorization: Bearer."},
    "servers": [{"url": "/"}],
    "components": {
        "securitySchemes": {"session": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"],
                      "properties": {"error": {"type": "string"}}},
            "Location": {"type": "object", "required": ["lat", "lon"],
                         "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90},
                                        "lon": {"type": "number", "minimum": -180,
                                                "maximum": 180},
                                        "coord": {"enum": ["gcj02", "wgs84"],
                                                  "default": "gcj02"}}},
            "Report": {"type": "object", "required": ["text"], "properties": {
                "text": {"type": "string", "maxLength": 2000},
                "location": _ref("Location"),
                "address": {"type": "string", "maxLength": 200},
                "community": {"type": "string", "maxLength": 32},
                "confirm": {"type": "boolean", "default": False}}},
            "Button": {"type": "object", "properties": {"label": {"type": "string"},
                                                        "value": {"type": "string"}}},
            "Turn": {"type": "object", "required": ["replies", "case", "step"], "properties": {
                "replies": {"type": "array", "items": {"type": "object", "properties": {
                    "text": {"type": "string"},
                    "buttons": {"type": "array", "items": _ref("Button")}}}},
                "case": {"oneOf": [_ref("Case"), {"type": "null"}]},
                "step": {"type": ["string", "null"],
                         "description": "what the dialog waits for; null when done"}}},
            "Photo": {"type": "object", "required": ["thumb", "full"], "description":
                      "links to one photo (paths on this server, signed: no Authorization "
                      "header needed, no one named in them; valid as long as a session)",
                      "properties": {"thumb": {"type": "string"},
                                     "full": {"type": "string"}}},
            "Event": {"type": "object", "required": ["at", "action", "status", "note"],
                      "properties": {
                          "at": {"type": "string"}, "action": {"type": "string"},
                          "status": {"type": ["string", "null"]},
                          "status_label": {"type": "string"},
                          "note": {"type": ["string", "null"]},
                          "photos": {"type": "array", "items": _ref("Photo"),
                                     "description": "on a 办结 (status handled) of one's own "
                                                    "case: the handler's after-photos"}}},
            "Worker": {"type": "object", "properties": {
                "name": {"type": "string"}, "role": {"type": "string"},
                "area": {"oneOf": [{"type": "object", "properties": {
                    "code": {"type": "string"}, "name": {"type": "string"}}},
                    {"type": "null"}]}}},
            "NearbyCase": {"type": "object", "properties": {
                "number": {"type": "string"}, "status": {"type": "string"},
                "status_label": {"type": "string"}, "item": {"type": "object"},
                "grid": {"type": "object"}, "created_at": {"type": "string"},
                "distance_m": {"type": "integer"}}},
            "Case": {"type": "object", "properties": {
                "number": {"type": "string"}, "status": {"type": "string"},
                "status_label": {"type": "string"}, "item": {"type": "object"},
                "grid": {"type": "object"}, "address": {"type": "string"},
                "text": {"type": "string"}, "created_at": {"type": "string"},
                "handling_due": {"type": ["string", "null"]},
                "rating": {"type": ["integer", "null"]}, "own": {"type": "boolean"},
                "photos": {"type": "integer"},
                "timeline": {"type": "array", "items": _ref("Event")}}},
        },
    },
    "paths": {
        "/api/mp/login": {"post": {
            "summary": "Exchange a wx.login() code for a session token",
            "requestBody": _json_body({"type": "object", "required": ["code"],
                                       "properties": {"code": {"type": "string"}}}),
            "responses": {"200": _answer("session", {"type": "object", "properties": {
                "token": {"type": "string"}, "expires_in": {"type": "integer"}}}), **_ERRORS}}},
        "/api/mp/reports": {"post": {
            "summary": "Report a problem (JSON, or multipart with up to 9 photos: JPEG, "
                       "PNG, WebP, GIF or HEIC)",
            "security": _AUTH,
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("Report")},
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "text": {"type": "string"}, "address": {"type": "string"},
                    "community": {"type": "string"},
                    "lat": {"type": "number"}, "lon": {"type": "number"},
                    "coord": {"type": "string"}, "confirm": {"type": "string"},
                    "photos": {"type": "array",
                               "items": {"type": "string", "format": "binary"}}}}}}},
            "responses": {"200": _answer("the dialog's answer", _ref("Turn")),
                          "429": _answer("the user's photos for today are used up",
                                         _ref("Error")), **_ERRORS}}},
        "/api/mp/reports/reply": {"post": {
            "summary": "Answer the dialog's question (category number, place, 确认, 取消)",
            "security": _AUTH,
            "requestBody": _json_body({"type": "object", "properties": {
                "text": {"type": "string"}, "location": _ref("Location")}}),
            "responses": {"200": _answer("the dialog's answer", _ref("Turn")), **_ERRORS}}},
        "/api/mp/reports/photos": {"post": {
            "summary": "Add photos to the report under way (multipart, field photos)",
            "security": _AUTH,
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["photos"], "properties": {"photos": {
                    "type": "array", "items": {"type": "string", "format": "binary"}}}}}}},
            "responses": {"200": _answer("photos the report now holds", {
                "type": "object", "properties": {"photos": {"type": "integer"},
                                                 "step": {"type": ["string", "null"]}}}),
                          "409": _answer("no report under way", _ref("Error")),
                          "429": _answer("the user's photos for today are used up",
                                         _ref("Error")), **_ERRORS}}},
        "/api/mp/reports/nearby": {"get": {
            "summary": "Open cases of the same kind near the report waiting for 确认 "
                       "(「是这个吗？」); empty when none or no report waits",
            "security": _AUTH,
            "responses": {"200": _answer("nearby open cases, nearest first", {
                "type": "object", "properties": {
                    "cases": {"type": "array", "items": _ref("NearbyCase")},
                    "radius_m": {"type": "number"}}}), **_ERRORS}}},
        "/api/mp/reports/follow": {"post": {
            "summary": "Follow a nearby case instead of filing the waiting report",
            "security": _AUTH,
            "requestBody": _json_body({"type": "object", "required": ["number"],
                                       "properties": {"number": {"type": "string"}}}),
            "responses": {"200": _answer("followed", {"type": "object", "properties": {
                "case": _ref("Case"), "followed": {"type": "boolean"}}}),
                          "409": _answer("no report waits, or the case is not one of the "
                                         "nearby open ones", _ref("Error")), **_ERRORS}}},
        "/api/mp/communities/{code}": {"get": {
            "summary": "The community a QR code's scene names, with the point a report "
                       "naming it alone is put at (GCJ-02): its main grid's",
            "security": _AUTH,
            "parameters": [{"name": "code", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": _answer("the community", {"type": "object", "properties": {
                "code": {"type": "string"}, "name": {"type": "string"},
                "level": {"type": "string"}, "center": _ref("Location")}}),
                          "404": _answer("no such community", _ref("Error")), **_ERRORS}}},
        "/api/mp/photos/{token}": {"get": {
            "summary": "A photo of one's own case, by the signed link the case gave "
                       "(Event.photos); ?size=thumb for a small JPEG",
            "parameters": [{"name": "token", "in": "path", "required": True,
                            "schema": {"type": "string"}},
                           {"name": "size", "in": "query", "required": False,
                            "schema": {"enum": ["thumb"]}}],
            "responses": {"200": {"description": "the image", "content": {
                "image/jpeg": {}, "image/png": {}, "image/webp": {}, "image/gif": {},
                "image/heic": {}}},
                          "404": _answer("forged or expired link, or no longer one's own "
                                         "case", _ref("Error"))}}},
        "/api/mp/cases": {"get": {
            "summary": "My cases, newest first", "security": _AUTH,
            "responses": {"200": _answer("cases", {"type": "object", "properties": {
                "cases": {"type": "array", "items": _ref("Case")}}}), **_ERRORS}}},
        "/api/mp/cases/{number}": {"get": {
            "summary": "One of my cases, with its timeline", "security": _AUTH,
            "parameters": [{"name": "number", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": _answer("the case", _ref("Case")),
                          "404": _answer("not one of yours", _ref("Error")), **_ERRORS}}},
        "/api/mp/cases/{number}/rating": {"post": {
            "summary": "Rate a closed case 1–5 (1–2 reopens it once)", "security": _AUTH,
            "parameters": [{"name": "number", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": _json_body({"type": "object", "required": ["score"], "properties": {
                "score": {"type": "integer", "minimum": 1, "maximum": 5},
                "note": {"type": "string", "maxLength": 500}}}),
            "responses": {"200": _answer("rated", _ref("Case")),
                          "404": _answer("not one of yours", _ref("Error")),
                          "409": _answer("not closed, or already rated", _ref("Error")),
                          **_ERRORS}}},
        "/api/mp/worker": {"get": {
            "summary": "The caller as a worker (name, role, area), or null for a citizen",
            "security": _AUTH,
            "responses": {"200": _answer("who", {"type": "object", "properties": {
                "worker": {"oneOf": [_ref("Worker"), {"type": "null"}]}}}), **_ERRORS}}},
        "/api/mp/worker/bind": {"post": {
            "summary": "Become a registered worker with a one-time code (`gridbot wechat "
                       "worker-code WORKER_ID`); their reports are then patrol reports",
            "security": _AUTH,
            "requestBody": _json_body({"type": "object", "required": ["code"], "properties": {
                "code": {"type": "string", "minLength": 4, "maxLength": 16}}}),
            "responses": {"200": _answer("bound", {"type": "object", "properties": {
                "worker": _ref("Worker")}}),
                          "404": _answer("wrong, used or expired code", _ref("Error")),
                          **_ERRORS}}},
        "/api/mp/worker/cases/{number}/on-spot": {"post": {
            "summary": "即办: close one's own patrol find on the spot with the after-photo(s) "
                       "(multipart: photos, note)",
            "security": _AUTH,
            "parameters": [{"name": "number", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["photos"], "properties": {
                    "note": {"type": "string", "maxLength": 500},
                    "photos": {"type": "array",
                               "items": {"type": "string", "format": "binary"}}}}}}},
            "responses": {"200": _answer("handled on the spot", {"type": "object",
                                                                  "properties": {
                "case": _ref("Case")}}),
                          "403": _answer("not a worker", _ref("Error")),
                          "409": _answer("refused (not theirs, not dispatched, no "
                                         "before-photo …): the reason", _ref("Error")),
                          "429": _answer("the user's photos for today are used up",
                                         _ref("Error")), **_ERRORS}}},
        "/api/mp/subscriptions": {"post": {
            "summary": "Record subscribe-message grants (from wx.requestSubscribeMessage)",
            "security": _AUTH,
            "requestBody": _json_body({"type": "object", "required": ["template_id"],
                                       "properties": {"template_id": {"type": "string"},
                                                      "accepted": {"type": "integer"}}}),
            "responses": {"200": _answer("grants now held", {"type": "object", "properties": {
                "grants": {"type": "integer"}}}), **_ERRORS}}},
    },
}


@blueprint.get("/api/openapi.json")
async def openapi() -> Response:
    return jsonify(OPENAPI)
