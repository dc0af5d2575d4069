"""The request's JSON body, or None for anything that is not a JSON document we can read.

Quart's `get_json(silent=True)` swallows bad JSON but not bytes that are not UTF-8
(UnicodeDecodeError) nor nesting deep enough to exhaust the parser (RecursionError, e.g.
100,000 `[`): both are the sender's fault and must be a 400, never a 500."""

from __future__ import annotations

from typing import Any

from quart import request


async def json_or_none() -> Any:
    try:
        return await request.get_json(force=True, silent=True)
    except (UnicodeDecodeError, RecursionError):
        return None
