"""GET /console/events: server-sent events of case changes the signed-in person may see.

Each stream holds its own Redis subscription, so a change committed by any server process
reaches every open console. Only the number and status travel; the page fetches the row
through the normal (scope-checked) endpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

from quart import Response, request, stream_with_context

from adapters.console import console
from adapters.console.auth import COOKIE, current_staff, require_staff, services, session_alive
from bot.changes import subscribe
from bot.staff import may_see

RECHECK_S = 60  # a logged-out or disabled account's stream ends within this


@dataclass(frozen=True)
class _Place:
    """Where a changed case is, as `may_see` reads it."""

    department: str
    grid_code: str


@console.get("/events")
@require_staff()
async def events() -> Response:
    s = services()
    staff = current_staff()
    assert staff is not None
    token = request.cookies.get(COOKIE, "")

    # The body is sent after the view returns: without the request's context the session
    # re-check (it reads the app's services) raised "Not within an app context".
    @stream_with_context
    async def stream() -> AsyncIterator[bytes]:
        yield b"retry: 3000\n: connected\n\n"
        checked = time.monotonic()
        # `subscribe` is an async generator function (annotated as the AsyncIterator it
        # yields), so it has the aclose that aclosing needs.
        changes_gen = cast(AsyncGenerator[dict[str, Any] | None, None], subscribe(s.redis))
        async with aclosing(changes_gen) as changes:
            async for change in changes:
                if time.monotonic() - checked > RECHECK_S:
                    if not await session_alive(token):
                        return
                    checked = time.monotonic()
                if change is None:
                    yield b": keep-alive\n\n"
                    continue
                seen = _Place(department=change.get("department", ""),
                              grid_code=change.get("grid", ""))
                if not may_see(staff, seen, s.grids):
                    continue
                data = json.dumps({"number": change.get("number"),
                                   "status": change.get("status")})
                yield f"event: case\ndata: {data}\n\n".encode()

    response = Response(stream(), mimetype="text/event-stream")
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
    response.timeout = None  # a stream lasts as long as the page is open
    return response
