"""Report a problem: describe → (choose the item) → (give the place) → confirm → filed."""

from __future__ import annotations

import logging
import uuid

from bot.cases import MAX_MEDIA_REF, CaseDraft, ReporterRef, report_key
from bot.locator import Located, Spot
from bot.messages import Button, InboundMessage, Outcome, Reply
from bot.services import Services
from bot.workflow import Status
from handlers import intents
from handlers.filing import Example, submit
from handlers.lang import say
from handlers.steps import Draft, PlaceDraft, Step, clear
from nlp.triage import TriageResult, hotlines, triage

log = logging.getLogger(__name__)
State = Draft
MIN_REPORT_CHARS = 4
OFFERED = 3  # categories offered at once
RANKED = 12  # the model's ranking kept for 「换一个」
LEARN_SOURCE = "chat"  # training_examples.source of a citizen's own choice


def spot_dict(spot: Spot) -> PlaceDraft:
    return {"lat": spot.lat, "lon": spot.lon, "address": spot.address, "grid": spot.grid.code}


async def start(msg: InboundMessage, text: str, state: State, s: Services) -> Outcome:
    """A new description: classify it, look for a place in it, then ask what is missing."""
    if len(text) < MIN_REPORT_CHARS:
        return Outcome([Reply(say("too_short"))])
    model = s.models.get()
    found = triage(model, text, s.config.triage.departments, k=RANKED)
    ranked = found.suggestions
    suggestions = ranked[:OFFERED]
    state.update({"text": text, "media": state.get("media", []),
                  "suggestions": [x.code for x in suggestions],
                  "ranked": [x.code for x in ranked], "offered": [],
                  "model_pick": ranked[0].code, "confidence": suggestions[0].confidence,
                  "urgent": found.urgent})
    state.pop("item", None)  # a new description: choose again
    first: list[Reply] = []
    if found.scope == "emergency":  # the phone call comes first, then the report
        first.append(Reply(say("scope.emergency", hotlines="、".join(found_hotlines(found)))))
    elif found.scope == "question":
        state["step"] = Step.OFFER_FILE
        return Outcome([_question_answer(found.topic, found.department)])
    elif found.scope == "department":
        routed = s.catalogue.department_item(found.topic)
        if routed is not None:  # not a grid matter: filed with the department responsible
            state["item"] = routed.code
            first.append(Reply(say("scope.department", department=routed.department)))
    if "item" not in state and model.is_sure(suggestions):
        state["item"] = suggestions[0].code
    if not state.get("spot"):
        located = s.locator.from_text(text)
        if located.status == "found" and located.spot:
            state["spot"] = spot_dict(located.spot)
    outcome = await next_step(state, s)
    outcome.replies[:0] = first
    return outcome


def found_hotlines(found: TriageResult) -> list[str]:
    return hotlines(found.danger) or ["110"]


def _question_answer(topic: str | None, department: str | None) -> Reply:
    text = say("scope.question", department=department or say("scope.hotline"))
    return Reply(text, [Button(say("button.file_anyway"), say("button.file_anyway")),
                        Button(say("button.no_thanks"), say("button.no_thanks"))])


async def offer_file(msg: InboundMessage, state: State, s: Services) -> Outcome:
    """After answering a question: 「仍要反映」 goes on as a report, anything else ends it
    (a new description starts a new one)."""
    if intents.is_file_anyway(msg.text) or intents.is_yes(msg.text):
        state["chosen"] = True  # whatever it is filed as, the citizen decided it is a case
        return await next_step(state, s)
    if len(msg.text.strip()) >= MIN_REPORT_CHARS and not intents.is_no(msg.text):
        return await start(msg, msg.text.strip(), state, s)
    clear(state)
    return Outcome([Reply(say("scope.question_done"))])


async def next_step(state: State, s: Services) -> Outcome:
    if not state.get("item"):
        state["step"] = Step.CHOOSE_ITEM
        return Outcome([_item_choices(state, s)])
    if not state.get("spot"):
        state["step"] = Step.AWAIT_LOCATION
        return Outcome([Reply(say("report.ask_location"))])
    state["step"] = Step.CONFIRM
    # The draft's own id keys its filing: a 确认 retried (by the channel, or by the citizen
    # after an error) files it once.
    state.setdefault("draft_id", uuid.uuid4().hex)
    return Outcome([_confirmation(state, s)])


def _item_choices(state: State, s: Services) -> Reply:
    lines = [say("report.choose_item")]
    buttons = []
    for index, code in enumerate(state["suggestions"], start=1):
        label = s.catalogue.get(code).label
        lines.append(say("report.choose_item_line", index=index, label=label))
        buttons.append(Button(label, str(index)))
    lines.append(say("report.choose_item_none"))
    lines.append(say("report.choose_item_more"))
    buttons.append(Button(say("button.wrong_category"), say("button.wrong_category")))
    return Reply("\n".join(lines), buttons)


async def other_items(state: State, s: Services) -> Outcome:
    """「类别不对」/「换一个」: the model's next best items, then the big classes."""
    offered = state.setdefault("offered", [])
    offered += [c for c in (state.get("item"), *state.get("suggestions", [])) if c]
    state.pop("item", None)
    remaining = [c for c in state.get("ranked", []) if c not in offered]
    if not remaining:
        return big_classes(state, s)
    state["suggestions"] = remaining[:OFFERED]
    state["step"] = Step.CHOOSE_ITEM
    return Outcome([_item_choices(state, s)])


def big_classes(state: State, s: Services) -> Outcome:
    state["step"] = Step.CHOOSE_BIG_CLASS
    names = s.catalogue.big_classes()
    lines = [say("report.choose_big_class")]
    lines += [say("report.choose_big_class_line", index=i, name=name)
              for i, name in enumerate(names, start=1)]
    return Outcome([Reply("\n".join(lines),
                          [Button(name, str(i)) for i, name in enumerate(names, start=1)])])


async def choose_big_class(msg: InboundMessage, state: State, s: Services) -> Outcome:
    names = s.catalogue.big_classes()
    picked = intents.choice(msg.text)
    if picked is None or not 1 <= picked <= len(names):
        return Outcome([Reply(say("report.choose_big_class_again", count=len(names)))])
    wanted = names[picked - 1]
    state["suggestions"] = [i.code for i in s.catalogue.items if i.big_class == wanted]
    state["ranked"] = []  # 换一个 from here goes back to the big classes
    state["offered"] = []
    state["step"] = Step.CHOOSE_ITEM
    return Outcome([_item_choices(state, s)])


def _confirmation(state: State, s: Services) -> Reply:
    spot = state["spot"]
    grid = s.grids.get(spot["grid"])
    return Reply(
        say("report.confirm", text=state["text"], item=s.catalogue.get(state["item"]).label,
          address=spot["address"] or say("report.pin_label", lat=spot["lat"], lon=spot["lon"]),
          grid=grid.name if grid else spot["grid"]),
        [Button(say("button.confirm"), say("button.confirm")),
         Button(say("button.wrong_category"), say("button.wrong_category")),
         Button(say("button.cancel"), say("button.cancel"))],
    )


async def choose_item(msg: InboundMessage, state: State, s: Services) -> Outcome:
    if msg.location is not None:
        # The place came first: keep it and still ask for the category.
        located = s.locator.from_point(msg.location.lat, msg.location.lon, msg.location.coord,
                                       msg.location.label)
        if located.status != "found" or located.spot is None:
            return Outcome([Reply(say("report.location_outside"))])
        state["spot"] = spot_dict(located.spot)
        return Outcome([Reply(say("report.location_kept")), _item_choices(state, s)])
    if intents.is_wrong_category(msg.text):
        return await other_items(state, s)
    picked = intents.choice(msg.text)
    count = len(state["suggestions"])
    if picked == 0:
        clear(state)
        return Outcome([Reply(say("report.rephrase"))])
    if picked is None and len(msg.text.strip()) >= MIN_REPORT_CHARS:
        return await start(msg, msg.text.strip(), state, s)  # a fresh description
    if picked is None or picked > count:
        return Outcome([Reply(say("report.choose_item_again", count=count))])
    state["item"] = state["suggestions"][picked - 1]
    state["chosen"] = True  # the citizen's own choice: worth learning from
    return await next_step(state, s)


async def got_location(msg: InboundMessage, state: State, s: Services) -> Outcome:
    """A pin or an address, at whatever step we are (it may also correct the place)."""
    if msg.location is not None:
        located = s.locator.from_point(msg.location.lat, msg.location.lon, msg.location.coord,
                                       msg.location.label)
    else:
        located = s.locator.from_text(msg.text)
    return await _apply_location(located, msg.text.strip(), state, s)


async def _apply_location(located: Located, said: str, state: State, s: Services) -> Outcome:
    if located.status == "found" and located.spot:
        state["spot"] = spot_dict(located.spot)
        state.pop("places", None)
        return await next_step(state, s)
    if located.status == "outside":
        return Outcome([Reply(say("report.location_outside"))])
    if located.status == "ambiguous" and located.choices:
        state["step"] = Step.CHOOSE_PLACE
        state["places"] = [spot_dict(c) for c in located.choices]
        lines = [say("report.choose_place")]
        buttons = []
        for index, spot in enumerate(located.choices, start=1):
            lines.append(say("report.choose_place_line", index=index, address=spot.address,
                           grid=spot.grid.name))
            buttons.append(Button(spot.address, str(index)))
        return Outcome([Reply("\n".join(lines), buttons)])
    if located.status == "ambiguous":
        return Outcome([Reply(say("report.location_road_only", named=located.named))])
    return Outcome([Reply(say("report.location_unknown", text=said[:30]))])


async def choose_place(msg: InboundMessage, state: State, s: Services) -> Outcome:
    picked = intents.choice(msg.text)
    places = state.get("places", [])
    if picked is not None and 1 <= picked <= len(places):
        state["spot"] = places[picked - 1]
        state.pop("places", None)
        return await next_step(state, s)
    if msg.location is not None or (msg.text.strip() and picked is None):
        return await got_location(msg, state, s)
    return Outcome([Reply(say("report.choose_place_again", count=len(places)))])


async def confirm(msg: InboundMessage, state: State, s: Services) -> Outcome:
    if msg.location is not None:
        return await got_location(msg, state, s)
    if intents.is_wrong_category(msg.text):
        return await other_items(state, s)
    if not intents.is_yes(msg.text):
        located = s.locator.from_text(msg.text) if msg.text.strip() else Located("none")
        if located.status != "none":
            return await _apply_location(located, msg.text.strip(), state, s)
        return Outcome([Reply(say("report.confirm_again"))])
    spot = state["spot"]
    # A registered grid worker reporting what they found is on patrol (巡查), not a citizen.
    worker = await s.teams.worker(msg.channel, msg.user)
    draft = CaseDraft(
        text=state["text"], item_code=state["item"], grid_code=spot["grid"],
        lat=spot["lat"], lon=spot["lon"], address=spot["address"],
        media=[ref for ref in state.get("media", []) if len(ref) <= MAX_MEDIA_REF],
        confidence=state.get("confidence"), urgent=bool(state.get("urgent")),
        report_key=report_key(msg.channel, msg.user,
                              state.get("draft_id") or msg.message_id or uuid.uuid4().hex),
        source="patrol" if worker is not None else "citizen",
    )
    # The citizen chose (or corrected) the category: a labelled example, with the model's
    # pick beside it.
    example = Example(LEARN_SOURCE, state.get("model_pick")) if state.get("chosen") else None
    try:
        filing = await submit(draft, ReporterRef(msg.channel, msg.user), s,
                              patrol=worker is not None, example=example)
    except Exception:
        # Keep the draft: the citizen can confirm again once storage is back.
        log.exception("filing a case failed")
        return Outcome([Reply(say("report.failed"))])
    clear(state)
    case = filing.case
    if filing.attached:
        return Outcome([Reply(say("report.attached", number=case.number,
                                status=say(f"status.{case.status}")))],
                       s.cases.public_view(case, with_timeline=False))
    grid = s.grids.get(case.grid_code)
    if case.status == Status.REPORTED:  # held for 核实 (a retry finds it still waiting too)
        return Outcome([Reply(say("verify.held", number=case.number,
                                item=s.cases.item_label(case)))])
    replies = [Reply(say(
        "report.filed", number=case.number, item=s.cases.item_label(case),
        grid=grid.name if grid else case.grid_code, leader=(grid.leader if grid else "") or "",
        target=s.cases.assignee_label(case.assignee),
        deadline=s.cases.local(case.handling_due),
    ))]
    if case.urgent:
        replies.append(Reply(say("report.filed_urgent")))
    if case.source == "patrol":  # the worker may close it on the spot (即办)
        replies.append(Reply(say("patrol.on_spot_hint", number=case.number)))
    return Outcome(replies, s.cases.public_view(case, with_timeline=False))
