"""handlers/report.py: the citizen's report dialog, step by step — each step called with the
draft as the router keeps it, and the answer and next step it gives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.messages import InboundMessage, Location
from bot.models import TrainingExample
from bot.services import Services
from bot.texts import t
from handlers import report
from handlers.steps import Draft, Step
from nlp.urgency import Danger

GRID = "440604001030103"  # 同济社区第3网格
SPOT = {"lat": 23.0215, "lon": 113.1214, "address": "同济路1号", "grid": GRID}
KIOSK, VENDING = "C0121", "C0125"  # grid-level items: 报刊亭, 自动售货机
sqlite_only = pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)


def _msg(text: str = "", user: str = "u1", location: Location | None = None) -> InboundMessage:
    return InboundMessage("test", user, text, location)


def _text(outcome: report.Outcome) -> str:
    return "\n".join(r.text for r in outcome.replies)


def test_found_hotlines_name_each_number_once_and_default_to_the_police() -> None:
    def found(*reasons: str) -> report.TriageResult:
        return report.TriageResult("emergency", None, None, True, True, [],
                                   Danger(emergency=reasons, urgent=reasons))

    assert report.found_hotlines(found()) == ["110"]
    assert report.found_hotlines(found("fire", "gas", "injured")) == ["119", "120"]


@sqlite_only
async def test_a_new_description_is_classified_and_its_place_kept(services: Services) -> None:
    s = services
    state: Draft = {}
    assert _text(await report.start(_msg(), "路灯", state, s)) == t("too_short")
    assert state == {}
    await report.start(_msg(), "季华五路18号的路灯不亮了，晚上很黑", state, s)
    assert state["spot"]["grid"] == "440604003020101"  # the address named in the words
    assert state["step"] in (Step.CHOOSE_ITEM, Step.CONFIRM)
    assert state["model_pick"] == state["ranked"][0] and len(state["ranked"]) <= report.RANKED
    assert state["suggestions"] == state["ranked"][:report.OFFERED]


@sqlite_only
async def test_next_step_asks_for_what_is_missing_in_order(services: Services) -> None:
    s = services
    state: Draft = {"text": "报刊亭破损", "suggestions": [KIOSK, VENDING]}
    choose = await report.next_step(state, s)
    assert state["step"] == Step.CHOOSE_ITEM
    [reply] = choose.replies
    assert [b.value for b in reply.buttons] == ["1", "2", t("button.wrong_category")]
    assert s.catalogue.get(KIOSK).label in reply.text
    state["item"] = KIOSK
    assert _text(await report.next_step(state, s)) == t("report.ask_location")
    assert state["step"] == Step.AWAIT_LOCATION
    state["spot"] = dict(SPOT)  # type: ignore[typeddict-item]
    confirm = await report.next_step(state, s)
    assert state["step"] == Step.CONFIRM and "同济路1号" in _text(confirm)
    draft_id = state["draft_id"]
    await report.next_step(state, s)
    assert state["draft_id"] == draft_id  # a repeated confirmation files the same report


@sqlite_only
async def test_other_items_then_the_big_classes(services: Services) -> None:
    s = services
    ranked = [i.code for i in s.catalogue.items[:5]]
    state: Draft = {"text": "问题", "ranked": ranked, "suggestions": ranked[:3],
                    "item": ranked[0]}
    await report.other_items(state, s)
    assert state["suggestions"] == ranked[3:] and "item" not in state
    assert state["step"] == Step.CHOOSE_ITEM
    big = await report.other_items(state, s)  # nothing left: the big classes
    assert state["step"] == Step.CHOOSE_BIG_CLASS
    names = s.catalogue.big_classes()
    assert [b.label for b in big.replies[0].buttons] == names
    again = await report.choose_big_class(_msg(str(len(names) + 1)), state, s)
    assert _text(again) == t("report.choose_big_class_again", count=len(names))
    await report.choose_big_class(_msg("1"), state, s)
    assert state["step"] == Step.CHOOSE_ITEM and state["ranked"] == []
    assert state["suggestions"] == [i.code for i in s.catalogue.items
                                    if i.big_class == names[0]]


@sqlite_only
async def test_choosing_an_item(services: Services) -> None:
    s = services
    state: Draft = {"text": "报刊亭破损", "suggestions": [KIOSK, VENDING],
                    "step": Step.CHOOSE_ITEM}
    assert _text(await report.choose_item(_msg("3"), state, s)) == t(
        "report.choose_item_again", count=2)
    # A pin first: kept, and the question stands; a pin outside every grid is refused.
    outside = await report.choose_item(_msg(location=Location(39.9, 116.4)), state, s)
    assert _text(outside) == t("report.location_outside") and "spot" not in state
    kept = await report.choose_item(_msg(location=Location(23.0215, 113.1214)), state, s)
    assert kept.replies[0].text == t("report.location_kept")
    assert state["spot"]["grid"] == GRID
    await report.choose_item(_msg("2"), state, s)
    assert state["item"] == VENDING and state["chosen"] is True
    assert state["step"] == Step.CONFIRM
    assert _text(await report.choose_item(_msg("0"), state, s)) == t("report.rephrase")
    assert state == {}  # 0: start again


@sqlite_only
async def test_places_unknown_road_only_and_a_choice_of_several(services: Services) -> None:
    s = services
    state: Draft = {"text": "报刊亭破损", "item": KIOSK, "step": Step.AWAIT_LOCATION}
    assert _text(await report.got_location(_msg("火星基地"), state, s)) == t(
        "report.location_unknown", text="火星基地")
    assert _text(await report.got_location(_msg("季华五路"), state, s)) == t(
        "report.location_road_only", named="季华五路")
    several = await report.got_location(_msg("人民政府"), state, s)
    assert state["step"] == Step.CHOOSE_PLACE and len(state["places"]) == 2
    assert [b.value for b in several.replies[0].buttons] == ["1", "2"]
    assert _text(await report.choose_place(_msg("5"), state, s)) == t(
        "report.choose_place_again", count=2)
    second = state["places"][1]
    await report.choose_place(_msg("2"), state, s)
    assert state["spot"] == second and "places" not in state
    assert state["step"] == Step.CONFIRM


@sqlite_only
async def test_confirm_files_once_and_learns_from_the_citizens_choice(
        services: Services) -> None:
    s = services
    state: Draft = {"text": "报刊亭破损", "item": VENDING, "model_pick": KIOSK,
                    "chosen": True, "spot": dict(SPOT),  # type: ignore[typeddict-item]
                    "step": Step.CONFIRM, "draft_id": "d1"}
    assert _text(await report.confirm(_msg("嗯嗯嗯"), state, s)) == t("report.confirm_again")
    filed = await report.confirm(_msg("确认"), state, s)
    assert state == {}
    assert filed.case is not None and filed.case["item"]["code"] == VENDING
    number = filed.case["number"]
    assert number in _text(filed) and "同济社区第3网格" in _text(filed)
    async with s.db.session() as session:
        example = (await session.execute(select(TrainingExample))).scalar_one()
    assert (example.item_code, example.suggested_code, example.source) == (
        VENDING, KIOSK, report.LEARN_SOURCE)


@sqlite_only
async def test_a_grid_workers_report_is_a_patrol_find(services: Services) -> None:
    s = services
    await s.teams.add_worker("周坚怡", "grid_worker", f"grid:{GRID}", "test", "w1",
                             datetime.now(UTC))
    state: Draft = {"text": "报刊亭破损", "item": KIOSK, "spot": dict(SPOT),  # type: ignore[typeddict-item]
                    "step": Step.CONFIRM, "draft_id": "d2"}
    filed = await report.confirm(_msg("确认", user="w1"), state, s)
    assert filed.case is not None
    number = filed.case["number"]
    assert filed.replies[-1].text == t("patrol.on_spot_hint", number=number)
    case = await s.cases.get(number)
    assert case is not None and case.source == "patrol"
