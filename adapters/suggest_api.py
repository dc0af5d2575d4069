"""Hotline suggestions: POST /api/v1/suggest and /api/v1/suggest/confirm.

Staff type or paste a call; they get its scope (catalogue / department / question /
emergency), the topic and department when it is not a grid matter, whether it is
urgent, the three most likely catalogue items (department, time limits, confidence) and
the grid if the text names a known place (nlp.triage; as `gridbot suggest --json`). What
they confirm or correct is stored as a labelled example for `gridbot train --from-cases`.
Transport only: the same authentication as the chat API, validation, and the project's own services.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, jsonify

from adapters import app_state
from adapters.http_api import authenticate_suggest, error, validated_body
from bot.cases import utcnow
from bot.locator import Located, Spot
from bot.models import TrainingExample
from bot.services import Services
from bot.texts import t
from nlp.normalize import has_chinese, prepare
from nlp.place_tags import place_names
from nlp.triage import ItemFacts, item_facts, triage

SOURCE = "hotline"
TOP_K = 3
# Raw text kept before cleaning: cleaning only shortens text, so a few times the classifier's
# limit loses nothing it would read, and a 1 MB body costs no more than a short one.
RAW_FACTOR = 4
suggest_api = Blueprint("suggest_v1", __name__, url_prefix="/api/v1/suggest")
# The chat API's gate with the suggest scope: configured keys, database keys with the
# suggest (or admin) scope, or loopback clients only when no keys are set.
suggest_api.before_request(authenticate_suggest)


class SuggestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=100_000)


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=100_000)
    item_code: str = Field(min_length=1, max_length=16)
    suggested_code: str | None = Field(None, max_length=16)


def _spot(spot: Spot) -> dict[str, Any]:
    return {"address": spot.address, "lat": spot.lat, "lon": spot.lon,
            "grid": {"code": spot.grid.code, "name": spot.grid.name, "level": spot.grid.level}}


def _location(located: Located, text: str) -> dict[str, Any]:
    found: dict[str, Any] = {"status": located.status, "named": located.named}
    if located.spot is not None:
        found.update(_spot(located.spot))
    if located.choices:
        found["choices"] = [_spot(s) for s in located.choices]
    if located.status == "none":
        # Not in the gazetteer: jieba's place tags still tell staff what was named.
        found["place_names"] = place_names(text)
    return found


_FACTS: dict[int, tuple[Any, dict[str, ItemFacts]]] = {}


def _facts(catalogue: Any) -> dict[str, ItemFacts]:
    """Item facts of the running catalogue, computed once per catalogue object."""
    cached = _FACTS.get(id(catalogue))
    if cached is None or cached[0] is not catalogue:
        cached = (catalogue, item_facts(catalogue))
        _FACTS.clear()
        _FACTS[id(catalogue)] = cached
    return cached[1]


def _suggest(services: Services, text: str) -> dict[str, Any]:
    model = services.models.get()
    facts = _facts(services.catalogue)
    result = triage(model, text, services.config.triage.departments, facts, k=TOP_K)
    items = []
    for s in result.suggestions:
        if s.code not in services.catalogue:  # a model older than the catalogue
            continue
        item = services.catalogue.get(s.code)
        items.append({**item.public_dict(), "label": item.label,
                      "confidence": round(s.confidence, 4)})
    sure = result.sure
    answer: dict[str, Any] = {
        "items": items,
        **result.as_dict(facts),  # scope, topic, department, urgent, sure, suggestions …
        "threshold": round(model.threshold, 4),
        "model_version": services.models.version,
        "location": _location(services.locator.from_text(text), text),
    }
    if not sure:
        answer["notice"] = t("suggest.unsure")
    return answer


@suggest_api.post("")
async def suggest() -> Response:
    body = await validated_body(SuggestIn)
    if isinstance(body, Response):
        return body
    services: Services = app_state.services()
    # Cleaned, masked and cut to the configured length: the cost of one call is bounded.
    limit = services.config.nlp.max_text_chars
    text = prepare(body.text[: limit * RAW_FACTOR], limit)
    if not text:
        return error(400, "text: empty after removing invisible characters")
    if not has_chinese(text):
        return error(422, t("no_chinese"), items=[])
    # Classifying and tagging are CPU work: keep the event loop free for other requests.
    return jsonify(await asyncio.to_thread(_suggest, services, text))


@suggest_api.post("/confirm")
async def confirm() -> Response:
    body = await validated_body(ConfirmIn)
    if isinstance(body, Response):
        return body
    services: Services = app_state.services()
    if body.item_code not in services.catalogue:
        return error(400, t("suggest.unknown_item", code=body.item_code))
    # Masked before it is stored: examples outlive cases and must not carry phone numbers.
    limit = services.config.nlp.max_text_chars
    text = prepare(body.text[: limit * RAW_FACTOR], limit)
    if not has_chinese(text):
        return error(422, t("no_chinese"))
    example = TrainingExample(text=text, item_code=body.item_code, source=SOURCE,
                              suggested_code=body.suggested_code, created_at=utcnow())
    async with services.db.session() as session, session.begin():
        session.add(example)
    item = services.catalogue.get(body.item_code)
    response = jsonify({
        "stored": True,
        "id": example.id,
        "item": {**item.public_dict(), "label": item.label},
        "corrected": body.suggested_code is not None and body.suggested_code != body.item_code,
        "message": t("suggest.stored"),
    })
    response.status_code = 201
    return response
