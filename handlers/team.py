"""The grid team's commands — 接单 / 到场 / 办结 / 退回 / 上报 / 核查通过 / 核查不通过, and
核实通过 / 核实不通过 of a patrol report waiting to be filed — carried out for every channel.
What each command is (its word, the statuses it may be taken in) is declared once in
bot.workflow.ACTIONS; a channel only translates its button or typed words into a TeamCommand
and calls `perform` (as Sentry's messaging integrations do)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.actions import ActionRefused
from bot.messages import InboundMessage, Outcome, Reply
from bot.models import Case, Worker
from bot.services import Services
from bot.workflow import ACTIONS, TEAM_ACTIONS
from handlers.intents import CASE_NUMBER
from handlers.lang import language, say
from handlers.steps import Draft

# Typed in chat: the team's actions, the check (核查) a leader or supervisor makes, and the
# second look (核实) at a patrol report before it is filed.
TYPED = (*TEAM_ACTIONS, ACTIONS["verify"], ACTIONS["verify_fail"], ACTIONS["confirm_report"],
         ACTIONS["refuse_report"])
_WORDS = "|".join(sorted((a.command for a in TYPED), key=len, reverse=True))
_TYPED_COMMAND = re.compile(rf"^\s*({_WORDS})\s*{CASE_NUMBER.pattern}?\s*(.*)$", re.DOTALL)
_BY_WORD = {a.command: a.name for a in TYPED}


@dataclass
class TeamCommand:
    action: str  # a bot.workflow.ACTIONS name
    number: str  # the case number ("" when the worker left it out)
    note: str = ""  # 办结's result, 退回's reason, a failed check's reason
    media: list[str] = field(default_factory=list)  # 办结's photos


def parse(text: str) -> TeamCommand | None:
    """「办结 20261203-0004 已清理」 → TeamCommand("resolve", "20261203-0004", "已清理")."""
    match = _TYPED_COMMAND.match(text or "")
    if match is None:
        return None
    return TeamCommand(_BY_WORD[match.group(1)], (match.group(2) or "").upper(),
                       match.group(3).strip())


async def perform(command: TeamCommand, worker: Worker | None, s: Services) -> Case:
    """Carry the command out; ActionRefused (nothing changed) says why."""
    actions, number, note = s.actions, command.number, command.note
    if command.action == "accept":
        return await actions.accept(number, worker)
    if command.action == "arrive":
        return await actions.arrive(number, worker)
    if command.action == "resolve":
        return await actions.resolve(number, worker, note, command.media)
    if command.action == "give_back":
        return await actions.give_back(number, worker, note)
    if command.action == "hand_up":
        return await actions.hand_up(number, worker, note)
    if command.action in ("verify", "verify_fail"):
        if command.action == "verify_fail" and not note:
            raise ActionRefused("reason_needed")
        return await actions.verify(number, worker, command.action == "verify", note)
    if command.action == "confirm_report":
        return await s.verification.confirm(number, worker)
    if command.action == "refuse_report":
        return await s.verification.refuse(number, worker, note)
    raise ActionRefused("unknown_command", action=command.action)


async def from_worker(msg: InboundMessage, s: Services,
                      draft: Draft | None = None) -> Outcome | None:
    """A registered worker's typed command (「办结 20261203-0004 已修好」) in any chat with the
    bot — a department worker's private chat too: carried out, never read as a citizen's
    complaint. `draft`: their dialog, whose photos sent just before go with a 办结. None when
    it is not a command or the sender is not a worker."""
    command = parse(msg.text)
    if command is None:
        return None
    worker = await s.teams.worker(msg.channel, msg.user)
    if worker is None:
        return None
    if not command.number:
        return Outcome([Reply(say("team.usage"))])
    kept = draft.get("media", []) if draft is not None and "step" not in draft else []
    if command.action == "resolve":
        # The photos sent with the words or just before them (no report under way) are the
        # evidence of the result.
        command.media = [*kept, *msg.media]
    try:
        case = await perform(command, worker, s)
    except ActionRefused as refused:
        return Outcome([Reply(refused.text(language.get()))])
    if command.media and draft is not None:
        draft.pop("media", None)  # used: they are the case's now
    return Outcome([Reply(say("team.done", command=ACTIONS[command.action].command,
                            number=case.number, status=say(f"status.{case.status}")))])
