"""Console pages and the JSON behind them: hotline intake, the case queue, the case page and
the actions staff take on a case.

Every case endpoint loads the case through `_visible_case`, which answers 404 for a case the
account may not see — the same answer as for a number that does not exist, so case numbers
cannot be probed. Actions reuse WorkerActions and CaseService; this module adds only the
role table, the audit row and the HTTP shape.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from quart import Response, abort, jsonify, render_template, request, url_for
from shapely.geometry import mapping
from sqlalchemy import and_, func, or_, select

from adapters import case_photos
from adapters.console import console
from adapters.console.auth import (
    StaffSession,
    audit,
    current_staff,
    error_page,
    require_staff,
    services,
)
from adapters.console.patrol_tracks import case_track
from adapters.json_body import json_or_none
from adapters.suggest_api import RAW_FACTOR, _location, _suggest
from adapters.suggest_api import SOURCE as TRAINING_SOURCE
from bot import sms_consent
from bot.actions import ActionRefused
from bot.cases import CaseDraft, CaseNotFound, RatingRefused, ReporterRef
from bot.catalogue import TimeLimit
from bot.media_store import (
    downloaded_key,
    is_video_ref,
    stored_key,
    telegram_file_id,
)
from bot.models import AttachedReport, Case, CaseMedia, CaseRating, Reporter
from bot.services import Services
from bot.sms_consent import mobile_number
from bot.staff import ROLES, as_worker, may_reveal_phone, may_see, visible_cases
from bot.teams import TeamsError
from bot.texts import catalogue, t
from bot.workflow import ACTIONS, OPEN, Status, TransitionError, offered
from handlers import team
from handlers.filing import Example, submit
from nlp.normalize import has_chinese, prepare

log = logging.getLogger(__name__)
CHANNEL = "hotline"
PAGE_SIZE = 50
PHONE_RE = re.compile(r"^\+?[0-9]{5,20}$")
INTAKE_ROLES = ("operator", "dispatcher", "supervisor")
# Who may take which action in which status: bot.workflow.ACTIONS (the one table). The
# WorkerActions/CaseService checks still apply on top (scope, status, "not your own work").


@console.context_processor
async def _template_globals() -> dict[str, Any]:
    return {"t": t, "staff": current_staff()}


def console_texts() -> dict[str, str]:
    """The console.* and status.* texts, for the page scripts (a JSON block, not a script)."""
    zh = catalogue("zh")
    return {k: v for k, v in zh.items() if k.startswith(("console.", "status."))}


def mask_phone(phone: str | None) -> str:
    """138****5678: enough to recognise a number read back to a caller, not to dial it."""
    if not phone:
        return ""
    if len(phone) <= 7:
        return phone[:1] + "*" * (len(phone) - 2) + phone[-1:]
    # A mobile keeps 3 + 4 digits; a shorter number (an 8-digit landline) only its last 4,
    # as nlp.normalize masks one in text: 3 + 4 of 8 digits would leave one to guess.
    head = 3 if len(phone) >= 11 else 0
    return phone[:head] + "*" * (len(phone) - head - 4) + phone[-4:]


def limit_text(limit: TimeLimit) -> str:
    """4wh → 4个工作小时: how an operator reads a time limit out to a caller."""
    return t(f"console.unit_{limit.unit}", n=limit.amount)


def clean_phone(raw: str) -> str:
    phone = re.sub(r"[\s\-()（）]", "", raw or "")
    if phone and not PHONE_RE.fullmatch(phone):
        raise ValueError(t("console.bad_phone"))
    return phone


def _error(status: int, message: str, **extra: Any) -> Response:
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response


async def _json_body() -> dict[str, Any]:
    body = await json_or_none()
    return body if isinstance(body, dict) else {}


def _staff_user() -> StaffSession:
    staff = current_staff()
    assert staff is not None  # require_staff ran first
    return staff


async def _visible_case(number: str, load_all: bool = False) -> Case:
    """The case if this account may see it; 404 otherwise (also for a number that exists)."""
    s = services()
    if len(number) > 32:
        abort(404)
    case = await s.cases.get(number) if load_all else await _case_row(s, number)
    if case is None or not may_see(_staff_user(), case, s.grids):
        abort(404)
    return case


async def _case_row(s: Services, number: str) -> Case | None:
    async with s.db.session() as session:
        return (await session.execute(select(Case).where(Case.number == number))).scalar()


def _is_overdue(case: Case, now: datetime) -> bool:
    return case.status in OPEN and case.handling_due is not None and case.handling_due < now


def row_view(s: Services, case: Case, now: datetime | None = None) -> dict[str, Any]:
    """One queue row."""
    now = now or s.cases.clock()
    grid = s.grids.get(case.grid_code)
    return {
        "number": case.number,
        "status": case.status,
        "status_label": t(f"status.{case.status}"),
        "item": s.cases.item_label(case),
        "item_code": case.item_code,
        "department": case.department,
        "level": case.current_level,
        "level_label": t(f"console.level_{case.current_level}"),
        "grid": case.grid_code,
        "grid_name": grid.name if grid else case.grid_code,
        "assignee": s.cases.assignee_label(case.assignee),
        "channel": case.channel,
        "channel_label": channel_label(case.channel),
        "urgent": case.urgent,
        "address": case.address,
        "text": case.text[:80],
        "created_at": s.cases.local(case.created_at),
        "handling_due": s.cases.local(case.handling_due),
        "overdue": _is_overdue(case, now),
        "updated_at": case.updated_at.isoformat(),
    }


def allowed_actions(role: str, case: Case) -> list[str]:
    return [a.name for a in ACTIONS.values() if a.name in HANDLERS and role in a.roles
            and offered(a, case.status, case.current_level)]


# -- intake -----------------------------------------------------------------------------------

@console.get("/intake")
@require_staff(*INTAKE_ROLES)
async def intake() -> str:
    return await render_template("console/intake.html", nav="intake", texts=console_texts(),
                                 items=services().catalogue.items)


def _clean_text(s: Services, raw: Any) -> str:
    limit = s.config.nlp.max_text_chars
    return prepare(str(raw or "")[: limit * RAW_FACTOR], limit)


@console.post("/api/suggest")
@require_staff(*INTAKE_ROLES)
async def api_suggest() -> Response:
    """Top-3 items (department, time limits) and the place, as the operator types."""
    body = await _json_body()
    s = services()
    text = _clean_text(s, body.get("text"))
    address = str(body.get("address") or "")[:200]
    if not text or not has_chinese(text):
        return _error(422, t("no_chinese"), items=[])
    answer = await asyncio.to_thread(_suggest, s, text)
    now = s.cases.clock()
    for item in answer["items"]:
        # What the operator reads out: how long the department has.
        entry = s.catalogue.get(item["code"])
        item["limits"] = t("console.limits", response=limit_text(entry.response),
                           handling=limit_text(entry.handling))
        # The deadline if filed now, on the working-time calendar the case will use.
        item["due"] = s.cases.local(s.cases.calendar.add(now, entry.handling))
    if address.strip():  # a typed address beats a place named in the call
        answer["location"] = _location(s.locator.from_text(address), address)
    return jsonify(answer)


def _pick_spot(s: Services, address: str, text: str, grid_code: str):
    located = s.locator.from_text(address) if address.strip() else s.locator.from_text(text)
    if located.status == "found" and located.spot is not None:
        return located.spot, None
    if located.status == "ambiguous":
        chosen = next((c for c in located.choices if c.grid.code == grid_code), None)
        if chosen is not None:
            return chosen, None
        return None, t("console.choose_place")
    if grid_code and (area := s.grids.get(grid_code)) is not None and area.level == "grid":
        # Not in the gazetteer, but the operator knows the grid: file it there, no point.
        return grid_code, None
    return None, (t("report.location_outside") if located.status == "outside"
                  else t("oneshot.no_place"))


@console.post("/api/intake")
@require_staff(*INTAKE_ROLES)
async def api_intake() -> Response:
    """File the call: the confirmed (or corrected) item, the place, the caller's phone."""
    body = await _json_body()
    s = services()
    text = _clean_text(s, body.get("text"))
    if not text or not has_chinese(text):
        return _error(422, t("no_chinese"))
    code = str(body.get("item_code") or "")[:16]
    suggested = str(body.get("suggested_code") or "")[:16] or None
    if code not in s.catalogue:
        return _error(422, t("oneshot.unknown_item", code=code or "-"))
    try:
        phone = clean_phone(str(body.get("phone") or ""))
    except ValueError as exc:
        return _error(422, str(exc))
    wants_sms = body.get("sms_consent") is True
    if wants_sms and mobile_number(phone) is None:
        return _error(422, t("console.sms_needs_mobile"))
    address = str(body.get("address") or "").strip()[:200]
    spot, problem = _pick_spot(s, address, text, str(body.get("grid_code") or "")[:32])
    if problem:
        return _error(422, problem)
    if isinstance(spot, str):
        draft = CaseDraft(text=text, item_code=code, grid_code=spot, address=address,
                          source="hotline")
    else:
        draft = CaseDraft(text=text, item_code=code, grid_code=spot.grid.code, lat=spot.lat,
                          lon=spot.lon, address=address or spot.address, source="hotline")
    # An opaque reporter id: the phone lives only in Reporter.phone, never in an identifier.
    reporter = ReporterRef(CHANNEL, f"call-{secrets.token_hex(12)}", phone or None)
    if wants_sms:  # before filing: the first update already goes by SMS
        await sms_consent.give(s.db, CHANNEL, reporter.external_id, s.cases.clock())
    try:
        # Every confirmation is a labelled example; a correction is the valuable kind.
        filing = await submit(draft, reporter, s, example=Example(TRAINING_SOURCE, suggested))
    except ValueError as exc:
        return _error(422, str(exc))
    corrected = suggested is not None and suggested != code
    await audit("intake", filing.case.number, item=code, suggested=suggested,
                corrected=corrected, attached=filing.attached, sms=wants_sms)
    response = jsonify({"number": filing.case.number, "attached": filing.attached,
                        "corrected": corrected, "url": f"/console/cases/{filing.case.number}",
                        "message": t("console.attached" if filing.attached else "console.filed",
                                     number=filing.case.number)})
    response.status_code = 201
    return response


# -- queue ------------------------------------------------------------------------------------

def _filters(s: Services) -> tuple[list[Any], dict[str, str]]:
    args = request.args
    wanted = {k: args.get(k, "").strip()[:64] for k in
              ("status", "level", "grid", "item", "overdue", "channel", "q")}
    where: list[Any] = []
    if wanted["status"] == "open":
        where.append(Case.status.in_([x.value for x in OPEN]))
    elif wanted["status"]:
        where.append(Case.status == wanted["status"])
    if wanted["level"]:
        where.append(Case.current_level == wanted["level"])
    if wanted["grid"]:
        # A street or district code means every grid under it.
        codes = [g.code for g in s.grids.grids
                 if wanted["grid"] in {a.code for a in s.grids.ancestors(g.code)}]
        where.append(Case.grid_code.in_(codes or [wanted["grid"]]))
    if wanted["item"]:
        where.append(or_(Case.item_code == wanted["item"],
                         Case.item_name.contains(wanted["item"], autoescape=True)))
    if wanted["overdue"] in ("1", "true", "yes"):
        where.append(and_(Case.status.in_([x.value for x in OPEN]),
                          Case.handling_due < s.cases.clock()))
    if wanted["channel"]:
        where.append(Case.channel == wanted["channel"])
    if wanted["q"]:
        # autoescape: a typed % or _ is a character to find, not a LIKE wildcard.
        q = wanted["q"]
        where.append(or_(Case.number.contains(q, autoescape=True),
                         Case.text.contains(q, autoescape=True),
                         Case.address.contains(q, autoescape=True)))
    return where, wanted


@console.get("/cases")
@require_staff()
async def queue() -> str:
    s = services()
    filters = {
        "statuses": [(x.value, t(f"status.{x.value}")) for x in Status],
        "levels": [(lv, t(f"console.level_{lv}")) for lv in ("grid", "street", "district")],
        "grids": [(a.code, a.name, a.level) for a in
                  sorted(s.grids.areas.values(), key=lambda a: (a.level != "street", a.code))
                  if a.level in ("street", "grid")],
        "channels": ["hotline", "telegram", "wechat", "wecom", "http", "open311", "mp"],
    }
    return await render_template("console/queue.html", nav="cases", filters=filters,
                                 texts=console_texts())


@console.get("/api/cases")
@require_staff()
async def api_cases() -> Response:
    s = services()
    where, wanted = _filters(s)
    try:
        page = max(1, min(int(request.args.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    scope = visible_cases(_staff_user(), s.grids)
    async with s.db.session() as session:
        total = (await session.execute(
            select(func.count()).select_from(Case).where(scope, *where))).scalar_one()
        rows = (await session.execute(
            select(Case).where(scope, *where).order_by(Case.updated_at.desc(), Case.id.desc())
            .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))).scalars().all()
    now = s.cases.clock()
    return jsonify({"total": total, "page": page, "pages": max(1, math.ceil(total / PAGE_SIZE)),
                    "page_size": PAGE_SIZE, "filters": wanted,
                    "cases": [row_view(s, c, now) for c in rows]})


@console.get("/api/cases/<number>/row")
@require_staff()
async def api_case_row(number: str) -> Response:
    """One queue row, for the live updates (they carry only the number)."""
    case = await _visible_case(number)
    return jsonify(row_view(services(), case))


# -- the case page ----------------------------------------------------------------------------

async def case_detail(s: Services, case: Case) -> dict[str, Any]:
    staff = _staff_user()
    view = s.cases.public_view(case)
    view["grid"].pop("leader", None)
    async with s.db.session() as session:
        reporter = await session.get(Reporter, case.reporter_id) if case.reporter_id else None
        attached = (await session.execute(
            select(AttachedReport).where(AttachedReport.case_id == case.id)
            .order_by(AttachedReport.id))).scalars().all()
        merged = (await session.execute(
            select(Case.number, Case.text).where(Case.merged_into == case.number)
            .order_by(Case.id))).all()
    # Staff see the whole trail (who, internal notes); reporters and the public see
    # CaseService.public_timeline.
    view["timeline"] = [
        {"at": s.cases.local(e.at), "action": e.action, "status": e.to_status,
         "actor": _actor_label(e.actor), "note": e.note,
         "label": t(f"status.{e.to_status}") if e.to_status
         else _text_or(f"console.event_{e.action}", e.action)}
        for e in case.events]
    view.update({
        "channel": case.channel,
        "channel_label": channel_label(case.channel),
        "overdue": _is_overdue(case, s.cases.clock()),
        "created_local": s.cases.local(case.created_at),
        "handling_due_local": s.cases.local(case.handling_due),
        "merged_into": case.merged_into,
        "photos": [_media_view(s, case.number, m) for m in case.media],
        "grid_feature": _grid_feature(s, case.grid_code),
        "reporter": {"channel": reporter.channel if reporter else case.channel,
                     "phone": mask_phone(reporter.phone) if reporter else "",
                     "may_reveal": bool(reporter and reporter.phone
                                        and may_reveal_phone(staff))},
        "attached": [{"id": a.id, "channel": a.channel, "text": a.text, "address": a.address,
                      "grid": a.grid_code, "at": s.cases.local(a.created_at)}
                     for a in attached],
        "merged": [{"number": n, "text": txt[:80]} for n, txt in merged],
        "sms": await _sms_consented(s, reporter),
        "callback": await _callback_state(s, case, reporter, staff),
        # A patrol-found case: the track of the patrol it was found on (supervisors only).
        "track": await case_track(case),
        "actions": allowed_actions(staff.role, case),
        "targets": dispatch_targets(s, case) if "dispatch" in allowed_actions(staff.role, case)
        else [],
    })
    return view


async def _sms_consented(s: Services, reporter: Reporter | None) -> bool:
    """Whether the caller hears of the case by SMS (the page says so, never the number)."""
    if reporter is None or reporter.channel != CHANNEL:
        return False
    async with s.db.session() as session:
        return bool(await sms_consent.consenting(session, [reporter.id]))


async def _callback_state(s: Services, case: Case, reporter: Reporter | None,
                          staff: StaffSession) -> dict[str, Any]:
    """The 回访 form: offered to intake staff on a closed case whose reporter left a phone
    number (a hotline caller), until this closure has its result (then the score recorded
    is shown instead)."""
    if case.status != Status.CLOSED or reporter is None or not reporter.phone:
        return {"offered": False, "recorded": None}
    async with s.db.session() as session:
        score = (await session.execute(select(CaseRating.score).where(
            CaseRating.case_id == case.id, CaseRating.closure == case.reopen_count,
            CaseRating.source == "callback"))).scalar()
    return {"offered": score is None and staff.role in INTAKE_ROLES, "recorded": score}


def dispatch_targets(s: Services, case: Case) -> list[tuple[str, str]]:
    """Where a dispatcher may send the case: its grid and the areas above it, then every
    department in the catalogue (the case's own first)."""
    areas = [(f"{a.level}:{a.code}", f"{t('console.level_' + a.level)} · {a.name}")
             for a in s.grids.ancestors(case.grid_code) if a.level in ("grid", "street",
                                                                       "district")]
    departments = sorted({i.department for i in s.catalogue.items} - {case.department})
    return [*areas, (f"department:{case.department}", case.department),
            *((f"department:{d}", d) for d in departments)]


def _text_or(key: str, fallback: str) -> str:
    return t(key) if key in catalogue("zh") else fallback


def channel_label(channel: str) -> str:
    return _text_or(f"console.channel_{channel}", channel)


def _actor_label(actor: str) -> str:
    """Timeline actors without channel ids: 'worker:12:王五' → 王五; citizens stay anonymous."""
    kind, _, rest = actor.partition(":")
    if kind == "worker":
        return rest.partition(":")[2] or t("console.actor_worker")
    if kind == "staff":  # console actions: the person's name, as a worker's reads
        return rest or t("console.actor_worker")
    if kind in ("citizen", "system"):
        return t(f"console.actor_{kind}")
    return actor


def _media_view(s: Services, number: str, media: CaseMedia) -> dict[str, Any]:
    ref = media.ref
    # Web addresses open in a new tab (the CSP keeps other sites' images off the page);
    # stored photos and Telegram's are served by the console, to staff who may see the case.
    link = ref if ref.startswith(("https://", "http://")) else ""
    ours = not link and bool(_store_key(ref))
    return {"id": media.id, "kind": media.kind, "url": link, "video": is_video_ref(ref),
            "full": url_for("console.case_photo", number=number, media_id=media.id)
            if ours else "",
            "thumb": url_for("console.case_photo", number=number, media_id=media.id,
                             size="thumb") if ours else "",
            "ref": "" if link or ours else ref[:24] + ("…" if len(ref) > 24 else ""),
            "added_by": _actor_label(media.added_by), "at": s.cases.local(media.created_at)}


def _store_key(ref: str) -> str | None:
    """Where a photo's bytes are (or will be, once fetched from Telegram) in the store."""
    file_id = telegram_file_id(ref)
    return downloaded_key("telegram", file_id) if file_id else stored_key(ref)


def _grid_feature(s: Services, code: str) -> dict[str, Any] | None:
    area = s.grids.get(code)
    if area is None:
        return None
    return {"type": "Feature", "geometry": mapping(area.geometry),
            "properties": {"code": area.code, "name": area.name}}


@console.get("/cases/<number>/photos/<int:media_id>")
@require_staff()
async def case_photo(number: str, media_id: int) -> Response:
    """One photo of a case, only for staff who may see the case; 404 otherwise (as for a
    case that does not exist). Served only as the image type its bytes are."""
    s = services()
    case = await _visible_case(number)
    async with s.db.session() as session:
        media = await session.get(CaseMedia, media_id)
    if media is None or media.case_id != case.id:
        abort(404)
    response = await case_photos.photo_response(await case_photos.case_photo(s, media.ref),
                                                thumb=request.args.get("size") == "thumb",
                                                request=request)
    return response or await error_page(404, t("console.photo_missing"))


@console.get("/cases/<number>")
@require_staff()
async def case_page(number: str) -> str:
    s = services()
    case = await _visible_case(number, load_all=True)
    await audit("view_case", case.number)
    return await render_template("console/case.html", nav="cases",
                                 case=await case_detail(s, case), texts=console_texts())


@console.get("/api/cases/<number>")
@require_staff()
async def api_case(number: str) -> Response:
    s = services()
    case = await _visible_case(number, load_all=True)
    return jsonify(await case_detail(s, case))


@console.post("/api/cases/<number>/phone")
@require_staff("operator", "supervisor")
async def api_reveal_phone(number: str) -> Response:
    """The caller's full number, for calling back; every reveal is in the audit log."""
    s = services()
    case = await _visible_case(number)
    async with s.db.session() as session:
        reporter = await session.get(Reporter, case.reporter_id) if case.reporter_id else None
    if reporter is None or not reporter.phone:
        return _error(404, t("console.no_phone"))
    await audit("reveal_phone", case.number)
    return jsonify({"phone": reporter.phone})


@console.post("/api/cases/<number>/callback")
@require_staff(*INTAKE_ROLES)
async def api_callback(number: str) -> Response:
    """回访: the result of calling the caller back after closure — reached or not, their
    1–5 satisfaction and a note. Reached with a score, it counts as this closure's rating."""
    s = services()
    case = await _visible_case(number)
    body = await _json_body()
    reached = body.get("reached") is True
    score: int | None = None
    if reached:
        raw = body.get("score")
        score = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
        if score is None or not 1 <= score <= 5:
            return _error(422, t("console.callback_score_needed"))
    note = str(body.get("note") or "").strip()[:500]
    staff = _staff_user()
    try:
        await s.cases.record_callback(case.number, f"staff:{staff.display_name}", reached,
                                      score, note)
    except (RatingRefused, CaseNotFound):
        await audit("refused:callback", case.number, why="status")
        return _error(409, t("console.callback_refused"))
    await audit("callback", case.number, reached=reached, score=score)
    return jsonify({"ok": True, "number": case.number, "message": t("console.callback_done")})


Handler = Callable[[Services, Case, dict[str, Any]], Awaitable[Any]]


def _reason(body: dict[str, Any]) -> str:
    return str(body.get("reason") or "").strip()[:500]


async def _dispatch(s: Services, case: Case, body: dict[str, Any]) -> Any:
    worker = as_worker(_staff_user(), case, s.grids)
    return await s.actions.reassign(case.number, worker, str(body.get("target") or "")[:140],
                                    _reason(body) or t("console.dispatched_note"))


async def _urge(s: Services, case: Case, body: dict[str, Any]) -> Any:
    note = _reason(body) or t("console.urge_default")
    staff = _staff_user()

    async def work(session, locked: Case, now: datetime) -> None:
        if locked.status not in ACTIONS["urge"].allowed:
            raise ActionRefused("moved_on", number=locked.number,
                                status=t(f"status.{locked.status}"))
        s.cases.event(session, locked, f"staff:{staff.display_name}", "urge", None, None, now,
                      t("console.urged", note=note))
        await s.cases.notify_to(session, locked, now, locked.assignee, t(
            "console.urge_notice", number=locked.number, item=s.cases.item_label(locked),
            note=note))
        locked.updated_at = now

    return await s.cases.locked(case.number, work)


async def _reject(s: Services, case: Case, body: dict[str, Any]) -> Any:
    reason = _reason(body)
    if not reason:
        raise ActionRefused("reason_needed")
    staff = _staff_user()
    return await s.cases.transition(case.number, Status.REJECTED,
                                    f"staff:{staff.display_name}",
                                    t("console.rejected_note", reason=reason))


async def _verify(s: Services, case: Case, body: dict[str, Any], fixed: bool) -> Any:
    return await s.actions.verify(case.number, as_worker(_staff_user(), case, s.grids), fixed,
                                  _reason(body))


async def _merge(s: Services, case: Case, body: dict[str, Any]) -> Any:
    target = str(body.get("target") or "").strip()[:32]
    await _visible_case(target)  # 404 for a target this account cannot see
    return await s.actions.merge(case.number, target, as_worker(_staff_user(), case, s.grids),
                                 _reason(body))


async def _split(s: Services, case: Case, body: dict[str, Any]) -> Any:
    try:
        attached_id = int(body["attached_id"])
    except (KeyError, TypeError, ValueError):
        raise ActionRefused("not_found", number=case.number) from None
    return await s.actions.split(case.number, attached_id,
                                 as_worker(_staff_user(), case, s.grids), _reason(body))


async def _worker_action(name: str, s: Services, case: Case, body: dict[str, Any]) -> Any:
    return await team.perform(team.TeamCommand(name, case.number, _reason(body)),
                              as_worker(_staff_user(), case, s.grids), s)


HANDLERS: dict[str, Handler] = {
    "dispatch": _dispatch,
    "urge": _urge,
    "reject": _reject,
    "verify": lambda s, c, b: _verify(s, c, b, True),
    "verify_fail": lambda s, c, b: _verify(s, c, b, False),
    "merge": _merge,
    "split": _split,
    **{name: functools.partial(_worker_action, name)
       for name in ("accept", "resolve", "give_back", "hand_up", "confirm_report",
                    "refuse_report")},
}
assert set(HANDLERS) == {a.name for a in ACTIONS.values() if a.roles}
assert all(set(a.roles) <= set(ROLES) for a in ACTIONS.values())


@console.post("/api/cases/<number>/actions/<name>")
@require_staff()
async def api_action(number: str, name: str) -> Response:
    s = services()
    case = await _visible_case(number)
    staff = _staff_user()
    if name not in HANDLERS:
        abort(404)
    body = await _json_body()
    if staff.role not in ACTIONS[name].roles:
        await audit(f"refused:{name}", case.number, why="role")
        return _error(403, t("console.forbidden"))
    try:
        result = await HANDLERS[name](s, case, body)
    except ActionRefused as exc:
        await audit(f"refused:{name}", case.number, why=exc.key)
        return _error(409, exc.text())
    except (TransitionError, CaseNotFound):
        await audit(f"refused:{name}", case.number, why="status")
        return _error(409, t("console.moved_on"))
    except TeamsError as exc:
        return _error(422, str(exc))
    await audit(name, case.number, reason=_reason(body), to=str(body.get("target") or ""),
                attached_id=body.get("attached_id"))
    number_now = result.number if isinstance(result, Case) else case.number
    return jsonify({"ok": True, "number": number_now,
                    "message": t("console.done", action=t(f"console.action_{name}"))})
