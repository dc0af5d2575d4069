"""核实: a grid worker's patrol report that the district wants looked at again before it is
filed (Beijing's supervisors report, the platform verifies). Which reports wait is config
(`[patrol] verify_levels`, `verify_items`). Such a report is stored as a case that stays
*reported* (上报): the grid leader or the street sees it with 核实通过 / 核实不通过; passing
files and dispatches it like any patrol report, failing rejects it and tells the worker why.
A report left unverified is urged (督办) through a case timer, like an overdue case."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.actions import CHECKER_ROLES, ActionRefused, actor_of
from bot.cases import CaseDraft, CaseNotFound, CaseService, Filing, ReporterRef
from bot.cases.drafts import MAX_ADDRESS, MAX_MEDIA_REF
from bot.cases.notices import Recipient, public_note
from bot.cases.rows import add_event, card_payload, outbox_key
from bot.catalogue import TimeLimit
from bot.config import PatrolConfig
from bot.models import Case, CaseMedia, CaseTimer, FiledReport, OutboxMessage, Reporter, Worker
from bot.scope import Level, Scope
from bot.teams import Teams
from bot.texts import t
from bot.workflow import ACTIONS, Status
from nlp.normalize import prepare

TIMER_KIND = "verify"  # the case timer that urges the verifiers
Work = Callable[[AsyncSession, Case, datetime, Worker], Awaitable[None]]


class PatrolVerification:
    def __init__(self, cases: CaseService, teams: Teams, config: PatrolConfig) -> None:
        self.cases = cases
        self.teams = teams
        self.config = config

    def needed(self, item_code: str) -> bool:
        """Whether a patrol report of this item waits for 核实 before it is filed."""
        if item_code not in self.cases.catalogue:
            return False
        item = self.cases.catalogue.get(item_code)
        return (str(item.level) in self.config.verify_levels
                or item.code in self.config.verify_items
                or item.big_class in self.config.verify_items)

    def _wait(self) -> TimeLimit:
        return TimeLimit(self.config.verify_within_wh, "wh")

    def _street_of(self, grid_code: str) -> Scope:
        street = self.cases.grids.at_level(grid_code, "street")
        return Scope.street(street.code if street else grid_code)

    async def _verifiers_room(self, session: AsyncSession, case: Case) -> Recipient:
        """The street's chat when it has one, else the grid's group (its leader checks),
        else the street's console inbox."""
        street = self._street_of(case.grid_code)
        room = (await self.teams.room_of(session, street)
                or await self.teams.group_of(session, case.grid_code))
        return Recipient(*room) if room is not None else Recipient("console", str(street))

    def card_text(self, case: Case) -> str:
        grid = self.cases.grids.get(case.grid_code)
        return t("verify.card", number=case.number, item=self.cases.item_label(case),
                 address=case.address or t("case.no_address"),
                 grid=grid.name if grid else case.grid_code, text=case.text)

    # -- holding a report -------------------------------------------------------------------

    async def hold(self, draft: CaseDraft, reporter: ReporterRef) -> Filing:
        """Keep the patrol report as a case to verify (status reported, no deadline yet),
        with its photos, and show it to the verifiers. A report key files once."""
        if draft.report_key and (replay := await self.cases.filed_by(draft.report_key)):
            return replay
        cases = self.cases
        item = cases.catalogue.get(draft.item_code)
        if cases.grids.get(draft.grid_code) is None:
            raise ValueError(f"unknown grid {draft.grid_code}")
        draft.address = prepare(draft.address, MAX_ADDRESS)
        media = [ref for ref in draft.media if 0 < len(ref) <= MAX_MEDIA_REF]
        now = cases.clock()
        try:
            async with cases.db.serialised(), cases.db.session() as session, session.begin():
                reporter_id = await cases.filing.reporter_id_for(session, reporter, now)
                case = Case(
                    number=await cases.numbers.take(session, now), status=Status.REPORTED,
                    item_code=item.code, item_name=item.name, big_class=item.big_class,
                    department=item.department, handling_level=item.level,
                    current_level=Level.STREET, assignee=str(self._street_of(draft.grid_code)),
                    urgent=item.urgent or draft.urgent, text=draft.text, address=draft.address,
                    lat=draft.lat, lon=draft.lon, grid_code=draft.grid_code,
                    channel=reporter.channel, source="patrol", reporter_id=reporter_id,
                    classifier_confidence=draft.confidence, created_at=now, updated_at=now,
                    reopen_count=0)
                session.add(case)
                await session.flush()
                add_event(session, case, "citizen", "report", None, Status.REPORTED, now,
                          t("event.awaiting_verify"))
                for ref in media:  # the photo before: 即办 after filing counts on it
                    session.add(CaseMedia(case_id=case.id, kind="photo", ref=ref,
                                          added_by="citizen", created_at=now))
                if draft.report_key:
                    session.add(FiledReport(key=draft.report_key, case_id=case.id,
                                            created_at=now))
                session.add(CaseTimer(case_id=case.id, kind=TIMER_KIND, level=Level.STREET,
                                      due_at=cases.calendar.add(now, self._wait()),
                                      created_at=now, outcome=""))
                to = await self._verifiers_room(session, case)
                payload = card_payload(case, media)
                session.add(OutboxMessage(
                    idempotency_key=outbox_key(case, "card", to.channel), case_id=case.id,
                    channel=to.channel, recipient=to.address, text=self.card_text(case),
                    payload=payload, status="pending", attempts=0, next_attempt_at=now,
                    created_at=now))
        except IntegrityError:
            if draft.report_key and (replay := await self.cases.filed_by(draft.report_key)):
                return replay  # a retry of the same report overtook this one
            raise
        return Filing(case, attached=False)

    # -- deciding ---------------------------------------------------------------------------

    async def _decide(self, number: str, worker: Worker | None, action: str,
                      work: Work) -> Case:
        async def guarded(session: AsyncSession, case: Case, now: datetime) -> None:
            if not self.teams.may_act(worker, case):
                raise ActionRefused("not_yours", number=case.number)
            assert worker is not None  # may_act refuses nobody
            if case.status not in ACTIONS[action].allowed:
                raise ActionRefused("moved_on", number=case.number,
                                    status=t(f"status.{case.status}"))
            if worker.role not in CHECKER_ROLES:
                raise ActionRefused("verifiers_only", number=case.number)
            reporter = (await session.get(Reporter, case.reporter_id)
                        if case.reporter_id is not None else None)
            if reporter is not None and (reporter.channel, reporter.external_id) == (
                    worker.channel, worker.external_id):
                raise ActionRefused("not_own_report", number=case.number)
            await session.execute(
                update(CaseTimer).where(CaseTimer.case_id == case.id,
                                        CaseTimer.done_at.is_(None))
                .values(done_at=now, outcome="cancelled"))
            await work(session, case, now, worker)

        try:
            return await self.cases.locked(number, guarded)
        except CaseNotFound:
            raise ActionRefused("not_found", number=number) from None

    async def confirm(self, number: str, worker: Worker | None) -> Case:
        """核实通过: filed and dispatched as a patrol report is, from now (its deadlines
        start now); the worker hears it is on its way."""
        cases = self.cases

        async def work(session: AsyncSession, case: Case, now: datetime,
                       worker: Worker) -> None:
            await cases.move(session, case, Status.FILED, actor_of(worker),
                             t("event.confirmed", name=worker.name), now, tell_reporter=False)
            item = cases.catalogue.get(case.item_code)
            level, assignee = cases.dispatch_target(item, case.grid_code)
            case.current_level, case.assignee = level, assignee
            if level == Level.DISTRICT:
                case.department = Scope.parse(assignee).ref
            case.response_due = cases.calendar.add(now, item.response)
            case.handling_due = cases.calendar.add(now, item.handling)
            target = cases.assignee_label(assignee)
            await cases.move(session, case, Status.DISPATCHED, "system",
                             t("event.dispatched", target=target), now, tell_reporter=False)
            await cases.notices.to_reporters(session, case, "verify.confirmed_worker", {
                "number": case.number, "target": target,
                "due": cases.local(case.handling_due)}, now)

        return await self._decide(number, worker, "confirm_report", work)

    async def refuse(self, number: str, worker: Worker | None, reason: str) -> Case:
        """核实不通过: the report is not filed (rejected), and the worker is told why."""
        reason = reason.strip()
        if not reason:
            raise ActionRefused("reason_needed")

        async def work(session: AsyncSession, case: Case, now: datetime,
                       worker: Worker) -> None:
            await self.cases.move(session, case, Status.REJECTED, actor_of(worker),
                                  t("event.confirm_failed", name=worker.name, reason=reason),
                                  now, tell_reporter=False)
            await self.cases.notices.to_reporters(session, case, "verify.refused_worker", {
                "number": case.number, "reason": public_note(reason)}, now)

        return await self._decide(number, worker, "refuse_report", work)

    # -- the reminder -----------------------------------------------------------------------

    async def fire_timer(self, session: AsyncSession, case: Case, timer: CaseTimer,
                         now: datetime) -> None:
        """Run a due verify timer (inside the timer runner's transaction, the case locked):
        督办 to the verifiers, and again after the same wait while it stays unverified."""
        if case.status != Status.REPORTED:
            return
        words = {"number": case.number, "item": self.cases.item_label(case),
                 "since": self.cases.local(case.created_at)}
        add_event(session, case, "system", "urge", None, None, now,
                  t("event.verify_overdue", **words))
        to = await self._verifiers_room(session, case)
        self.cases.notices.add(session, case, to, t("group.verify_overdue", **words), now,
                               kind="notice")
        session.add(CaseTimer(case_id=case.id, kind=TIMER_KIND, level=timer.level,
                              due_at=self.cases.calendar.add(now, self._wait()),
                              created_at=now, outcome=""))

    async def waiting(self, grid_codes: list[str] | None = None,
                      limit: int = 100) -> list[Case]:
        """Patrol reports waiting for 核实, the oldest first (optionally of some grids)."""
        query = select(Case).where(Case.status == Status.REPORTED, Case.source == "patrol")
        if grid_codes is not None:
            query = query.where(Case.grid_code.in_(grid_codes))
        async with self.cases.db.session() as session:
            return list((await session.execute(
                query.order_by(Case.created_at, Case.id).limit(limit))).scalars())
