"""The case state machine (CJJ/T 106: 上报 → 立案 → 派遣 → 处置 → 反馈 → 核查 → 结案 → 评价)."""

from __future__ import annotations

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
