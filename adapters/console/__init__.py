"""The staff console: /console — hotline intake, the case queue, case pages, live updates.

One blueprint for every console page. Each module adds its routes to `console`:
`auth` (sessions, login, CSRF, roles, audit), `pages` (intake, queue, case page and their
JSON), `events` (server-sent events), and the dashboard (`dashboard`, when present).
"""

from __future__ import annotations

import importlib.util

from quart import Blueprint

console = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
                    static_folder="static", static_url_path="/static")

# (patrol_tracks: staff-only patrol tracks for the dashboard's map)
from adapters.console import (  # noqa: E402,F401  (routes on `console`)
    auth,
    events,
    pages,
    patrol_tracks,
)

# The dashboard/map is built separately; it joins the same blueprint once it exists.
if importlib.util.find_spec("adapters.console.dashboard") is not None:
    from adapters.console import dashboard  # noqa: F401
