"""The grid team's commands — 接单 / 到场 / 办结 / 退回 / 上报 / 核查通过 / 核查不通过 — carried
out for every channel. What each command is (its word, the statuses it may be taken in) is
declared once in bot.workflow.ACTIONS; a channel only translates its button or typed words
into a TeamCommand and calls `perform` (as Sentry's messaging integrations do)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.actions import ActionRefused
from bot.models import Case, Worker
from bot.services import Services
from bot.workflow import ACTIONS, TEAM_ACTIONS
from handlers.intents import CASE_NUMBER

# Typed in chat: the team's actions and the check (核查) a leader or supervisor makes.
TYPED = (*TEAM_ACTIONS, ACTIONS["verify"], ACTIONS["verify_fail"])
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
    raise ActionRefused("unknown_command", action=command.action)
