"""Which approved SMS template an update goes as, and its parameters in order.

A reporter's outbox row carries the catalogue key and values of its text (payload "say");
each key maps to a template field of [sms] and the values that fill it. A kind whose own
template is not configured goes as the generic status template (number and new status),
so no caller misses an update because one template is still under review.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.config import SmsConfig
from bot.texts import t

# catalogue key → ([sms] field, the values in the template's order)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "citizen.status_changed": ("template_status", ("number", "status")),
    "citizen.handled_with": ("template_handled", ("number", "note")),
    "citizen.back_with": ("template_back", ("number", "why")),
    "citizen.escalated": ("template_escalated", ("number", "level", "target", "due")),
    "citizen.closed_rate": ("template_closed", ("number",)),
    "citizen.merged": ("template_merged", ("number", "target")),
}
FALLBACK = "citizen.status_changed"


@dataclass(frozen=True)
class Filled:
    template_id: str
    params: list[str]


def template_fields() -> list[str]:
    return [name for name, _ in KINDS.values()]


def fill(config: SmsConfig, payload: dict[str, Any]) -> Filled | None:
    """The template and parameters for an outbox row's payload; None when neither its own
    template nor the generic one is configured (or the row is no case update)."""
    say = payload.get("say") or {}
    key = str(say.get("key", ""))
    values = {k: str(v) for k, v in (say.get("values") or {}).items()}
    values.setdefault("number", str(payload.get("case", "")))
    status = str(payload.get("status", ""))
    values.setdefault("status", t(f"status.{status}") if status else "")
    if key in KINDS and getattr(config, KINDS[key][0]):
        field, names = KINDS[key]
    elif getattr(config, KINDS[FALLBACK][0]) and values["number"]:
        field, names = KINDS[FALLBACK]
    else:
        return None
    cut = config.param_max_chars
    # A provider refuses a variable over its length limit: cut it, marked as cut.
    # An empty one is refused too: "-" stands for a value the update does not have.
    params = [v if len(v) <= cut else v[: cut - 1] + "…"
              for v in (values.get(name) or "-" for name in names)]
    return Filled(getattr(config, field), params)
