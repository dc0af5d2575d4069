"""handlers/team.py: the grid team's typed commands — parsed once for every channel, and
carried out only for a registered worker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.actions import ActionRefused
from bot.cases import CaseDraft, ReporterRef
from bot.messages import InboundMessage
from bot.services import Services
from bot.texts import t
from bot.workflow import ACTIONS
from handlers.steps import Draft
from handlers.team import TYPED, TeamCommand, from_worker, parse, perform

GRID = "440604001030103"  # 同济社区第3网格
KIOSK = "C0121"  # 报刊亭: a grid-level item, which the grid's worker may close on the spot


@pytest.mark.parametrize(("text", "command"), [
    ("办结 20261203-0004 已清理", TeamCommand("resolve", "20261203-0004", "已清理")),
    ("  接单20261203-0004", TeamCommand("accept", "20261203-0004")),
    ("退回 CC20261203-0004 不归我们管\n请改派", TeamCommand(
        "give_back", "CC20261203-0004", "不归我们管\n请改派")),
    # The longer command wins: 核查不通过 is not 核查通过 with a note.
    ("核查不通过 20261203-0004 还有垃圾", TeamCommand("verify_fail", "20261203-0004", "还有垃圾")),
    ("核查通过 20261203-0004", TeamCommand("verify", "20261203-0004")),
    ("核实不通过 20261203-0004 不是问题", TeamCommand(
        "refuse_report", "20261203-0004", "不是问题")),
    ("上报", TeamCommand("hand_up", "")),  # the number left out: the handler asks for it
])
def test_typed_commands_are_parsed(text: str, command: TeamCommand) -> None:
    assert parse(text) == command


@pytest.mark.parametrize("text", ["", "路灯不亮", "我要办结这件事", "派遣 20261203-0004"])
def test_other_words_are_no_command(text: str) -> None:
    # 派遣 is a console action, not one a team types.
    assert parse(text) is None


def test_every_typed_command_is_parsed_back_to_its_action() -> None:
    for action in TYPED:
        parsed = parse(f"{action.command} 20261203-0004 说明")
        assert parsed == TeamCommand(action.name, "20261203-0004", "说明")
    assert "dispatch" not in {a.name for a in TYPED} and "reject" not in {a.name for a in TYPED}


async def _worker_and_case(s: Services) -> str:
    await s.teams.add_worker("周坚怡", "grid_worker", f"grid:{GRID}", "test", "w1",
                             datetime.now(UTC))
    filing = await s.cases.file(CaseDraft(text="报刊亭破损", item_code=KIOSK, grid_code=GRID,
                                          lat=23.0215, lon=113.1214),
                                ReporterRef("test", "citizen"))
    return filing.case.number


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_perform_refuses_what_it_cannot_carry_out(services: Services) -> None:
    number = await _worker_and_case(services)
    worker = await services.teams.worker("test", "w1")
    with pytest.raises(ActionRefused) as refused:
        await perform(TeamCommand("verify_fail", number), worker, services)
    assert refused.value.key == "reason_needed"
    with pytest.raises(ActionRefused) as refused:
        await perform(TeamCommand("teleport", number), worker, services)
    assert refused.value.key == "unknown_command"
    with pytest.raises(ActionRefused) as refused:  # nobody: not theirs to act on
        await perform(TeamCommand("accept", number), None, services)
    assert refused.value.key == "not_yours"


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_only_a_worker_commands_and_photos_sent_before_go_with_a_resolve(
        services: Services) -> None:
    s = services
    number = await _worker_and_case(s)
    # A citizen typing the words is not a worker: the dialog reads it as anything else.
    assert await from_worker(InboundMessage("test", "citizen", f"办结 {number}"), s) is None
    assert await from_worker(InboundMessage("test", "w1", "路灯不亮"), s) is None
    usage = await from_worker(InboundMessage("test", "w1", "办结"), s)
    assert usage is not None and usage.replies[0].text == t("team.usage")
    refused = await from_worker(InboundMessage("test", "w1", "接单 20000101-0001"), s)
    assert refused is not None
    assert refused.replies[0].text == t("action.not_found", number="20000101-0001")
    draft: Draft = {"media": ["photo-before-words"]}  # sent just before, no report under way
    done = await from_worker(InboundMessage("test", "w1", f"办结 {number} 已修好",
                                            media=["photo-with-words"]), s, draft)
    assert done is not None
    assert done.replies[0].text == t("team.done", command=ACTIONS["resolve"].command,
                                     number=number, status=t("status.handled"))
    assert "media" not in draft  # the photos are the case's now
    case = await s.cases.get(number)
    assert case is not None and case.status == "handled"
    assert [m.ref for m in case.media if m.added_by.startswith("worker:")] == [
        "photo-before-words", "photo-with-words"]
