"""Patrol tracks for staff maps: today's tracks in the account's area for the dashboard
(GET /console/dashboard/patrols.json). Workers' positions are for those who supervise them
(bot.patrol.track_grids), never for public pages; every read is in the audit log."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from quart import Response, jsonify

from adapters.console import console
from adapters.console.auth import audit, current_staff, require_staff, services
from bot.models import Case, Patrol
from bot.patrol import track_grids


@console.get("/dashboard/patrols.json")
@require_staff()
async def dashboard_patrols() -> Response:
    staff = current_staff()
    assert staff is not None  # require_staff ran first
    s = services()
    grids = track_grids(staff.role, staff.scope, s.grids)
    if grids is not None and not grids:
        return jsonify({"patrols": []})
    local = s.cases.clock().astimezone(s.cases.calendar.tz)
    start = datetime.combine(local.date(), time(0), local.tzinfo)
    where: list[Any] = [Patrol.started_at >= start,
                        Patrol.started_at < start + timedelta(days=1)]
    if grids is not None:
        where.append(Patrol.grid_code.in_(sorted(grids)))
    tracks = await s.patrols.tracks(where)
    await audit("view_patrols", start.date().isoformat(), count=len(tracks))
    return jsonify({"patrols": tracks})


async def case_track(case: Case) -> dict[str, Any] | None:
    """The track of the patrol a patrol-found case was reported on, for an account that may
    see it (None otherwise)."""
    staff = current_staff()
    s = services()
    if staff is None or case.source != "patrol":
        return None
    grids = track_grids(staff.role, staff.scope, s.grids)
    if grids is not None and case.grid_code not in grids:
        return None
    return await s.patrols.track_of_case(case)
