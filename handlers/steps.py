"""The citizen's report dialog, declared: its steps, the draft it builds, and (in
handlers.router.STEPS) which handler answers at each step — python-telegram-bot's
ConversationHandler table is the model. A new step is a member here and a row there."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypedDict, cast


class Step(StrEnum):
    CHOOSE_ITEM = "choose_item"  # the model was unsure: pick one of the suggestions
    CHOOSE_BIG_CLASS = "choose_big_class"  # none of them: pick the big class first
    AWAIT_LOCATION = "await_location"  # a pin or an address, please
    CHOOSE_PLACE = "choose_place"  # the address matched places in several grids
    CONFIRM = "confirm"  # 确认 files it, 取消 drops it
    OFFER_FILE = "offer_file"  # a question was answered: 仍要反映 files it all the same


class PlaceDraft(TypedDict):
    lat: float
    lon: float
    address: str
    grid: str  # the grid's code


class Draft(TypedDict, total=False):
    """What a report under way holds between turns (kept in Redis as JSON, with a TTL)."""

    step: Step
    text: str  # the complaint, cleaned and masked
    media: list[str]  # photo references sent so far
    item: str  # the chosen catalogue code (absent until chosen)
    suggestions: list[str]  # the codes offered now (the model's best, or a big class's)
    ranked: list[str]  # the model's ranking, for 「换一个」
    offered: list[str]  # codes already offered and passed over
    model_pick: str  # the model's first choice: a different final item is a correction
    chosen: bool  # the citizen picked the item (not the model alone)
    urgent: bool  # danger read from the words (nlp.urgency): filed as urgent
    confidence: float | None
    spot: PlaceDraft
    places: list[PlaceDraft]  # the choices of CHOOSE_PLACE
    draft_id: str  # keys the filing: a retried 确认 files once


def clear(draft: Draft) -> None:
    """Forget the report under way (a draft is a plain dict underneath)."""
    cast(dict[str, Any], draft).clear()


def step_of(draft: Draft) -> Step | None:
    """The draft's step; a value this version does not know (an older or newer server wrote
    it) counts as none, so the person starts afresh rather than being stuck."""
    try:
        return Step(draft["step"]) if draft.get("step") else None
    except ValueError:
        return None
