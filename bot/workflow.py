"""The case state machine (CJJ/T 106: 上报 → 立案 → 派遣 → 处置 → 反馈 → 核查 → 结案 → 评价)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    REPORTED = "reported"  # 上报
    FILED = "filed"  # 立案
    DISPATCHED = "dispatched"  # 派遣
    HANDLING = "handling"  # 处置
    HANDLED = "handled"  # 反馈 (the handler says it is done)
    VERIFIED = "verified"  # 核查
    CLOSED = "closed"  # 结案
    REJECTED = "rejected"  # 不予立案 / invalid
    REOPENED = "reopened"  # after a bad rating or failed check
    ESCALATED = "escalated"  # handed up a level, awaiting dispatch there


OPEN = frozenset(Status) - {Status.CLOSED, Status.REJECTED}

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.REPORTED: frozenset({Status.FILED, Status.REJECTED}),
    Status.FILED: frozenset({Status.DISPATCHED, Status.REJECTED}),
    # dispatched → dispatched is a reassignment; → handled is 即办 closing on the spot.
    Status.DISPATCHED: frozenset(
        {Status.DISPATCHED, Status.HANDLING, Status.HANDLED, Status.ESCALATED, Status.REJECTED}
    ),
    # → rejected: staff close a case as invalid or merged into another, at any open stage
    # before the work is reported done.
    Status.HANDLING: frozenset(
        {Status.HANDLED, Status.ESCALATED, Status.DISPATCHED, Status.REJECTED}
    ),
    # A failed check sends the case back out: 二次派单.
    Status.HANDLED: frozenset({Status.VERIFIED, Status.DISPATCHED}),
    Status.VERIFIED: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset({Status.REOPENED}),
    Status.REOPENED: frozenset({Status.DISPATCHED, Status.REJECTED}),
    Status.ESCALATED: frozenset({Status.DISPATCHED, Status.REJECTED}),
    Status.REJECTED: frozenset(),
}


class TransitionError(Exception):
    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(f"a case that is {current} cannot become {wanted}")
        self.current = current
        self.wanted = wanted


def check_transition(current: str, wanted: str) -> None:
    if Status(wanted) not in TRANSITIONS[Status(current)]:
        raise TransitionError(current, wanted)


@dataclass(frozen=True)
class Action:
    """One thing people do to a case. The one description every surface reads: the team's
    cards and commands (Telegram, WeCom), the console's buttons, and WorkerActions, which
    checks `allowed` again under the case lock."""

    name: str
    command: str  # the word a worker types or presses: 接单
    allowed: frozenset[Status]  # the statuses it may be taken in
    target: Status | None  # where it moves the case (None: recorded only, or several)
    roles: tuple[str, ...]  # console roles that may take it
    team: bool = False  # offered to the grid team on cards and as a typed command
    needs_note: bool = False  # asks for a note or reason first


_WORKABLE = frozenset({Status.DISPATCHED, Status.HANDLING})
DISPATCH_ROLES = ("dispatcher", "supervisor")  # 派遣, 督办, 作废, 合并, 拆分
_CHECK_ROLES = ("dispatcher", "supervisor", "grid_leader")
_TEAM_ROLES = ("department", "grid_leader")

ACTIONS: dict[str, Action] = {a.name: a for a in (
    # The grid team's, in the order a card shows them.
    Action("accept", "接单", frozenset({Status.DISPATCHED}), Status.HANDLING, _TEAM_ROLES,
           team=True),
    Action("arrive", "到场", frozenset({Status.HANDLING}), None, (), team=True),
    # From dispatched too: 即办, a grid matter solved on the spot.
    Action("resolve", "办结", _WORKABLE, Status.HANDLED, _TEAM_ROLES, team=True,
           needs_note=True),
    Action("give_back", "退回", _WORKABLE, Status.ESCALATED, _TEAM_ROLES, team=True,
           needs_note=True),
    Action("hand_up", "上报", _WORKABLE, Status.ESCALATED, ("grid_leader",), team=True),
    # Staff's.
    Action("verify", "核查通过", frozenset({Status.HANDLED}), Status.CLOSED, _CHECK_ROLES),
    Action("verify_fail", "核查不通过", frozenset({Status.HANDLED}), Status.DISPATCHED,
           _CHECK_ROLES, needs_note=True),
    # 核实: a patrol report the district wants looked at again before it is filed
    # (bot/verify.py) waits as reported; passing files and dispatches it, failing rejects it.
    Action("confirm_report", "核实通过", frozenset({Status.REPORTED}), None, _CHECK_ROLES),
    Action("refuse_report", "核实不通过", frozenset({Status.REPORTED}), Status.REJECTED,
           _CHECK_ROLES, needs_note=True),
    Action("dispatch", "派遣", frozenset({Status.DISPATCHED, Status.HANDLING,
                                         Status.ESCALATED}), Status.DISPATCHED,
           DISPATCH_ROLES, needs_note=True),
    Action("urge", "督办", frozenset({Status.DISPATCHED, Status.HANDLING, Status.ESCALATED}),
           None, DISPATCH_ROLES),
    Action("reject", "作废", frozenset({Status.REPORTED, Status.FILED, Status.DISPATCHED,
                                       Status.HANDLING, Status.REOPENED, Status.ESCALATED}),
           Status.REJECTED, DISPATCH_ROLES, needs_note=True),
    Action("merge", "合并", OPEN, Status.REJECTED, DISPATCH_ROLES, needs_note=True),
    Action("split", "拆分", OPEN, None, DISPATCH_ROLES, needs_note=True),
)}
TEAM_ACTIONS = tuple(a for a in ACTIONS.values() if a.team)
BY_COMMAND = {a.command: a for a in ACTIONS.values()}


def offered(action: Action, status: str, level: str | None = None) -> bool:
    """Whether `action` is possible for a case in `status` at `level`: a case at the
    district has no level above to hand up or give back to."""
    if status not in action.allowed:
        return False
    return not (action.name in ("hand_up", "give_back") and level == "district")
