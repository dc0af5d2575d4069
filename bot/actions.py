"""What grid workers and staff do to a case: accept, arrive, resolve (or solve on the spot),
give back, hand up, verify, reassign. Every action checks who may do it and that the case is
still where the button or command thought it was; a refusal carries a catalogue text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases import CaseNotFound, CaseService
from bot.models import Case, CaseEvent, CaseMedia, Worker
from bot.scope import Scope
from bot.teams import Teams
from bot.texts import t
from bot.workflow import ACTIONS, DISPATCH_ROLES, Status, TransitionError

# A guarded action's work: the case is locked, and `worker` is the one who may act on it.
Work = Callable[[AsyncSession, Case, datetime, Worker], Awaitable[None]]


class ActionRefused(Exception):
    """Nothing changed; `text` tells the person why, in their language's words."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values

    def text(self, language: str = "zh") -> str:
        return t(f"action.{self.key}", language, **self.values)


# Who may check (核查) a handled case: not the team's workers nor the handling department.
CHECKER_ROLES = ("grid_leader", "street_staff", "dispatcher", "supervisor")


def actor_of(worker: Worker) -> str:
    return f"worker:{worker.id}:{worker.name}"


class WorkerActions:
    def __init__(self, cases: CaseService, teams: Teams) -> None:
        self.cases = cases
        self.teams = teams

    async def _act(self, number: str, worker: Worker | None, allowed: Collection[Status],
                   work: Work) -> Case:
        async def guarded(session: AsyncSession, case: Case, now: datetime) -> None:
            if not self.teams.may_act(worker, case):
                raise ActionRefused("not_yours", number=case.number)
            if case.status not in allowed:
                raise ActionRefused("moved_on", number=case.number,
                                    status=t(f"status.{case.status}"))
            assert worker is not None  # may_act refuses nobody
            await work(session, case, now, worker)

        try:
            return await self.cases.locked(number, guarded)
        except CaseNotFound:
            raise ActionRefused("not_found", number=number) from None

    async def accept(self, number: str, worker: Worker | None) -> Case:
        """接单: the first to press wins; the second sees that it is taken."""
        async def work(session: AsyncSession, case: Case, now: datetime,
                       worker: Worker) -> None:
            await self.cases.move(session, case, Status.HANDLING, actor_of(worker),
                                  t("event.accepted", name=worker.name), now)

        return await self._act(number, worker, ACTIONS["accept"].allowed, work)

    async def arrive(self, number: str, worker: Worker | None) -> Case:
        """到场: recorded on the timeline; the clock keeps running."""
        async def work(session: AsyncSession, case: Case, now: datetime,
                       worker: Worker) -> None:
            self.cases.event(session, case, actor_of(worker), "arrive", None, None, now,
                             t("event.arrived", name=worker.name))
            case.updated_at = now

        return await self._act(number, worker, ACTIONS["arrive"].allowed, work)

    async def resolve(self, number: str, worker: Worker | None, note: str,
                      media: list[str] | None = None) -> Case:
        """办结: handled, awaiting verification. A grid-level case still waiting to be taken
        may be solved on the spot (即办) by its grid's worker, counted separately."""
        async def work(session: AsyncSession, case: Case, now: datetime,
                       worker: Worker) -> None:
            on_spot = case.status == Status.DISPATCHED
            if on_spot and not (case.handling_level == "grid"
                                and worker.scope == f"grid:{case.grid_code}"):
                raise ActionRefused("accept_first", number=case.number)
            if on_spot and case.source == "patrol" and not (
                    media and any(m.added_by == "citizen" for m in await self._media(session,
                                                                                     case))):
                # 即办 of one's own find counts only with the photo before and after.
                raise ActionRefused("on_spot_photos", number=case.number)
            for ref in media or []:
                session.add(CaseMedia(case_id=case.id, kind="photo", ref=ref,
                                      added_by=actor_of(worker), created_at=now))
            if on_spot:
                self.cases.event(session, case, actor_of(worker), "on_spot", None, None, now,
                                 t("event.on_spot"))
            await self.cases.move(session, case, Status.HANDLED, actor_of(worker),
                                  note or t("event.resolved"), now)

        return await self._act(number, worker, ACTIONS["resolve"].allowed, work)

    @staticmethod
    async def _media(session: AsyncSession, case: Case) -> list[CaseMedia]:
        return list((await session.execute(
            select(CaseMedia).where(CaseMedia.case_id == case.id))).scalars())

    async def give_back(self, number: str, worker: Worker | None, reason: str) -> Case:
        """退回: not ours (wrong place or matter); the level above dispatches it again."""
        if not reason.strip():
            raise ActionRefused("reason_needed")

        async def work(session: AsyncSession, case: Case, now: datetime,
                       worker: Worker) -> None:
            if not await self.cases.escalate(session, case, now, actor_of(worker),
                                             t("event.given_back", reason=reason)):
                raise ActionRefused("top_level", number=case.number)

        return await self._act(number, worker, ACTIONS["give_back"].allowed, work)

    async def hand_up(self, number: str, worker: Worker | None, reason: str = "") -> Case:
        """上报: beyond the grid's power; the street (then the district) takes it."""
        async def work(session: AsyncSession, case: Case, now: datetime,
                       worker: Worker) -> None:
            if not await self.cases.escalate(session, case, now, actor_of(worker),
                                             t("event.handed_up", reason=reason or "-")):
                raise ActionRefused("top_level", number=case.number)

        return await self._act(number, worker, ACTIONS["hand_up"].allowed, work)

    async def verify(self, number: str, worker: Worker | None, fixed: bool,
                     note: str = "") -> Case:
        """核查 by someone other than the handler: fixed → verified and closed; not fixed →
        dispatched again (二次派单)."""
        async def work(session: AsyncSession, case: Case, now: datetime,
                       worker: Worker) -> None:
            handler = (await session.execute(
                select(CaseEvent.actor).where(CaseEvent.case_id == case.id,
                                              CaseEvent.to_status == Status.HANDLED)
                .order_by(CaseEvent.id.desc()).limit(1))).scalar()
            if handler == actor_of(worker):
                raise ActionRefused("not_own_work", number=case.number)
            if worker.role not in CHECKER_ROLES:  # a grid leader, street staff or the centre
                raise ActionRefused("checkers_only", number=case.number)
            if fixed:
                await self.cases.move(session, case, Status.VERIFIED, actor_of(worker),
                                      note or t("event.verified"), now)
                await self.cases.move(session, case, Status.CLOSED, "system",
                                      t("event.closed"), now)
            else:
                await self.cases.move(session, case, Status.DISPATCHED, actor_of(worker),
                                      t("event.not_fixed", note=note or "-"), now)

        return await self._act(number, worker, ACTIONS["verify"].allowed, work)

    async def reassign(self, number: str, staff: Worker | None, assignee: str,
                       reason: str) -> Case:
        """A dispatcher sends the case elsewhere, with a reason (二次派单 after a give-back)."""
        self._dispatcher(staff, reason)
        self.teams.check_scope(assignee)
        level = Scope.parse(assignee).level

        async def work(session: AsyncSession, case: Case, now: datetime,
                       staff: Worker) -> None:
            case.assignee = assignee
            case.current_level = level
            await self.cases.move(session, case, Status.DISPATCHED, actor_of(staff),
                                  t("event.reassigned", target=self.cases.assignee_label(
                                      assignee), reason=reason), now)

        return await self._act(number, staff, ACTIONS["dispatch"].allowed, work)

    async def merge(self, source: str, target: str, staff: Worker | None, reason: str) -> Case:
        """合并: two reports of one problem become one case (dispatchers and supervisors)."""
        staff = self._dispatcher(staff, reason)
        try:
            return await self.cases.merge(source, target, actor_of(staff), reason)
        except CaseNotFound as exc:
            raise ActionRefused("not_found", number=str(exc)) from None
        except (TransitionError, ValueError):
            raise ActionRefused("cannot_merge", source=source, target=target) from None

    async def split(self, number: str, attached_id: int, staff: Worker | None,
                    reason: str) -> Case:
        """拆分: an attached report that is a different problem becomes its own case."""
        staff = self._dispatcher(staff, reason)
        try:
            return await self.cases.split(number, attached_id, actor_of(staff), reason)
        except CaseNotFound:
            raise ActionRefused("not_found", number=number) from None

    @staticmethod
    def _dispatcher(staff: Worker | None, reason: str) -> Worker:
        if staff is None or staff.role not in DISPATCH_ROLES:
            raise ActionRefused("dispatchers_only")
        if not reason.strip():
            raise ActionRefused("reason_needed")
        return staff
