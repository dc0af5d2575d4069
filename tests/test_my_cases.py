"""handlers/my_cases.py: 我的案件, 查询 and 评价 — a person sees and rates only what they
reported."""

from __future__ import annotations

import pytest

from bot.cases import CaseDraft, ReporterRef
from bot.messages import InboundMessage
from bot.services import Services
from bot.texts import t
from bot.workflow import Status
from handlers.my_cases import list_mine, rate, show

GRID = "440604001030103"  # 同济社区第3网格
CLOSING = (Status.HANDLING, Status.HANDLED, Status.VERIFIED, Status.CLOSED)


def _msg(user: str) -> InboundMessage:
    return InboundMessage("test", user, "")


async def _file(s: Services, user: str, text: str = "报刊亭破损") -> str:
    filing = await s.cases.file(CaseDraft(text=text, item_code="C0121", grid_code=GRID),
                                ReporterRef("test", user))
    return filing.case.number


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_my_cases_lists_only_mine_newest_first(services: Services) -> None:
    s = services
    assert (await list_mine(_msg("me"), s)).replies[0].text == t("cases.none")
    first, second = await _file(s, "me"), await _file(s, "me", "售货亭坏了")
    await _file(s, "someone-else")
    lines = (await list_mine(_msg("me"), s)).replies[0].text.splitlines()
    assert lines[0] == t("cases.header") and lines[-1] == t("cases.footer")
    assert [line.split("｜")[0] for line in lines[1:-1]] == [second, first]
    assert lines[1].split("｜")[2] == t("status.dispatched")


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_show_answers_the_reporter_alone_with_the_status_trail(services: Services) -> None:
    s = services
    number = await _file(s, "me")
    assert (await show(_msg("me"), "", s)).replies[0].text == t("cases.ask_number")
    # Someone else's case reads as a number that does not exist: nothing to probe.
    other = await show(_msg("stranger"), number, s)
    assert other.replies[0].text == t("cases.not_found", number=number) and other.case is None
    shown = await show(_msg("me"), number, s)
    text = shown.replies[0].text
    assert number in text and "同济社区第3网格" in text
    # One line per status change: reported, filed, dispatched.
    assert sum(t("status.dispatched") in line for line in text.splitlines()[1:]) >= 1
    assert shown.case is not None and shown.case["number"] == number
    assert shown.case["text"] == "报刊亭破损"  # the reporter's own view


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_rating_asks_refuses_thanks_and_reopens(services: Services) -> None:
    s = services
    number = await _file(s, "me")
    assert (await rate(_msg("me"), "评价", s)).replies[0].text == t("rate.ask")
    assert (await rate(_msg("me"), (number, 5, ""), s)).replies[0].text == t(
        "rate.refused", number=number)  # not closed yet
    assert (await rate(_msg("stranger"), (number, 5, ""), s)).replies[0].text == t(
        "cases.not_found", number=number)
    for status in CLOSING:
        await s.cases.transition(number, status, "test")
    assert (await rate(_msg("me"), (number, 2, "还是坏的"), s)).replies[0].text == t(
        "rate.reopened", number=number)
    second = await _file(s, "me", "售货亭坏了")
    for status in CLOSING:
        await s.cases.transition(second, status, "test")
    assert (await rate(_msg("me"), (second, 5, "很快"), s)).replies[0].text == t(
        "rate.thanks", score=5)
