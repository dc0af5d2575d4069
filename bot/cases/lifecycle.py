"""Moving a case through the workflow: transitions with their trail, timers and notices,
escalation, ratings, merges and splits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.context import CaseContext
from bot.cases.drafts import CaseDraft, CaseNotFound, RatingRefused, ReporterRef
from bot.cases.filing import CaseFiling
from bot.cases.notices import CaseNotices, Recipient
from bot.cases.rows import REMIND_KINDS, add_event, timer_rows
from bot.cases.views import CaseViews, reporter_row
from bot.catalogue import TimeLimit
from bot.models import (
    AttachedReport,
    Case,
    CaseEvent,
    CaseMedia,
    CaseRating,
    CaseTimer,
    Reporter,
)
from bot.scope import Level, Scope, next_level
from bot.texts import t
from bot.workflow import OPEN, Status, TransitionError, check_transition
from nlp.normalize import clean, mask_personal

DAILY_URGE = TimeLimit(1, "wd")  # how often an overdue case at the top level is urged again


class CaseLifecycle:
    def __init__(self, ctx: CaseContext, views: CaseViews, notices: CaseNotices,
                 filing: CaseFiling) -> None:
        self.ctx = ctx
        self.views = views
        self.notices = notices
        self.filing = filing

    async def move(self, session: AsyncSession, case: Case, new: Status, actor: str,
                    note: str, now: datetime, tell_reporter: bool = True) -> CaseEvent:
        check_transition(case.status, new)
        old = case.status
        case.status = new
        case.updated_at = now
        if new == Status.CLOSED:
            case.closed_at = now
        catalogue = self.ctx.catalogue
        if new == Status.DISPATCHED and old != Status.FILED and case.item_code in catalogue:
            # Every (re-)dispatch gives the new assignee the item's full response and
            # handling time.
            item = catalogue.get(case.item_code)
            case.response_due = self.ctx.calendar.add(now, item.response)
            case.handling_due = self.ctx.calendar.add(now, item.handling)
        event = add_event(session, case, actor, "transition", old, new, now, note)
        if new != Status.HANDLING:  # accepting does not stop the clock
            # A case only gets timers once dispatched: nothing to cancel before that.
            await self._reset_timers(session, case, now,
                                     cancel=old not in (Status.REPORTED, Status.FILED))
        # Back to the team after its work was found wanting: the new card says why.
        came_back = new == Status.DISPATCHED and old in (Status.HANDLED, Status.REOPENED)
        await self.notices.on_transition(session, case, now, tell_reporter,
                                         why=event.note if came_back else "", note=event.note)
        return event

    async def _reset_timers(self, session: AsyncSession, case: Case, now: datetime,
                            cancel: bool = True) -> None:
        """Cancel what is pending; a dispatched case gets reminders and its escalation."""
        if cancel:
            await session.execute(
                update(CaseTimer).where(CaseTimer.case_id == case.id,
                                        CaseTimer.done_at.is_(None))
                .values(done_at=now, outcome="cancelled")
            )
        catalogue = self.ctx.catalogue
        working = (case.item_code in catalogue
                   and catalogue.get(case.item_code).handling.working)
        for row in timer_rows(case, now, self.ctx.calendar, working):
            session.add(CaseTimer(**row))

    async def fire_timer(self, session: AsyncSession, case: Case, timer: CaseTimer,
                         now: datetime) -> None:
        """Run one due timer inside the runner's transaction (case row already locked)."""
        if case.status not in (Status.DISPATCHED, Status.HANDLING):
            return  # the case moved on; nothing to urge
        target = self.views.assignee_label(case.assignee)
        words = {"number": case.number, "item": self.views.item_label(case), "target": target,
                 "due": self.views.local(case.handling_due)}
        if timer.kind in REMIND_KINDS:
            add_event(session, case, "system", "remind", None, None, now,
                      t(f"event.{timer.kind}", **words))
            await self.notices.to_assignee(session, case, now, case.assignee,
                                           t(f"group.{timer.kind}", **words))
            return
        if timer.kind == "respond":
            if case.status == Status.DISPATCHED:  # not accepted (接单) within its limit
                add_event(session, case, "system", "urge", None, None, now,
                          t("event.response_overdue", **words))
                await self.notices.to_assignee(session, case, now, case.assignee,
                                               t("group.response_overdue", **words))
            return
        if next_level(case.current_level) is None:
            # At the district: no higher level. 督办 now and every working day until done.
            add_event(session, case, "system", "urge", None, None, now,
                      t("event.overdue_district"))
            await self.notices.to_assignee(session, case, now, case.assignee,
                                           t("group.overdue", **words))
            session.add(CaseTimer(case_id=case.id, kind="escalate", level=case.current_level,
                                  due_at=self.ctx.calendar.add(now, DAILY_URGE),
                                  created_at=now, outcome=""))
            return
        await self.escalate(session, case, now, "system", t("event.escalated", target=target))

    async def escalate(self, session: AsyncSession, case: Case, now: datetime, actor: str,
                       note: str) -> bool:
        """Hand the case up one level (grid → street → district), telling the level below.
        False when it is already at the top."""
        upper = next_level(case.current_level)
        if upper is None:
            return False
        below = case.assignee
        await self.move(session, case, Status.ESCALATED, actor, note, now,
                        tell_reporter=False)
        await self.notices.to_assignee(session, case, now, below, t(
            "group.escalated_notice", number=case.number, item=self.views.item_label(case)))
        case.current_level = upper
        case.assignee = self._assignee_at(case, upper)
        target = self.views.assignee_label(case.assignee)
        await self.move(session, case, Status.DISPATCHED, "system",
                        t("event.dispatched", target=target), now, tell_reporter=False)
        # The reporters hear where it went and by when it is due there.
        await self.notices.to_reporters(session, case, "citizen.escalated", {
            "number": case.number, "level": t(f"level.{upper}"), "target": target,
            "due": self.views.local(case.handling_due)}, now)
        return True

    def _assignee_at(self, case: Case, level: Level) -> str:
        """Who holds the case at `level`: the grid's street, then the district department
        responsible for the item (from the organisation, never a local body)."""
        if level == Level.STREET:
            street = self.ctx.grids.at_level(case.grid_code, "street")
            return str(Scope.street(street.code if street else case.grid_code))
        # The department that now holds the case is the one its staff see it under.
        case.department = self.ctx.config.district_department(case.item_code, case.department)
        return str(Scope.department(case.department))

    async def transition(self, number: str, new: Status, actor: str, note: str = "",
                         assignee: str | None = None) -> Case:
        async def move(session: AsyncSession, case: Case, now: datetime) -> None:
            if assignee is not None:
                case.assignee = assignee
            await self.move(session, case, new, actor, note, now)

        return await self.locked(number, move)

    async def locked(self, number: str,
                     work: Callable[[AsyncSession, Case, datetime], Awaitable[Any]]) -> Case:
        """Run `work` on the case in one transaction with the case row locked, so two people
        acting at once are served one after the other (and the second sees the first's
        change)."""
        async with self.ctx.db.serialised(), self.ctx.db.session() as session, session.begin():
            case = (await session.execute(
                select(Case).where(Case.number == number).with_for_update()
            )).scalar_one_or_none()
            if case is None:
                raise CaseNotFound(number)
            # The work's reads (bindings, reporters, timers) do not depend on its own writes:
            # without autoflush the writes go out together at commit, the outbox rows as one
            # INSERT, instead of a flush before every read.
            with session.no_autoflush:
                await work(session, case, self.ctx.clock())
        return case

    async def rate(self, number: str, reporter: ReporterRef, score: int, note: str = "") -> Case:
        """The reporter's 1–5 rating of a closed case; 1–2 reopens it once (back to the level
        that handled it, which is told)."""
        if not 1 <= score <= 5:
            raise ValueError("a rating is 1 to 5")
        now = self.ctx.clock()
        async with self.ctx.db.session() as session, session.begin():
            # Only the first reporter rates: a follower's score would count one case twice
            # and could reopen someone else's case.
            case = (await session.execute(
                select(Case).where(Case.number == number,
                                   Case.reporter_id.in_(reporter_row(reporter)))
                .with_for_update()
            )).scalar_one_or_none()
            if case is None:
                raise CaseNotFound(number)
            if case.status != Status.CLOSED or await self._rated(session, case, "chat"):
                raise RatingRefused(case.status)
            self._keep_rating(session, case, score, note, "chat", now)
            add_event(session, case, "citizen", "rate", None, None, now,
                      t("event.rated", score=score, note=note))
            if score <= 2 and case.reopen_count == 0:
                # Reopened once; the unhappy rating stays counted (the first of its closure).
                case.reopen_count += 1
                await self.move(session, case, Status.REOPENED, "citizen",
                                t("event.reopened", score=score), now)
                await self.notices.to_assignee(session, case, now, case.assignee, t(
                    "group.reopened", number=case.number, item=self.views.item_label(case),
                    score=score, note=note or "-"))
                await self.move(session, case, Status.DISPATCHED, "system",
                                t("event.redispatched_why", score=score, note=note or "-"),
                                now, tell_reporter=False)
        return case

    async def record_callback(self, number: str, actor: str, reached: bool,
                              score: int | None = None, note: str = "") -> Case:
        """回访: staff called the reporter back after closure. Reached, with a 1–5 score, it
        is kept as a rating of this closure (source callback) and counts in satisfaction as
        a chat rating does — the first rating of each closure counts, whichever came
        first. Not reached, or no score: recorded on the timeline only."""
        if score is not None and not 1 <= score <= 5:
            raise ValueError("a rating is 1 to 5")

        async def work(session: AsyncSession, case: Case, now: datetime) -> None:
            if case.status != Status.CLOSED:
                raise RatingRefused(case.status)
            if reached and score is not None:
                if await self._rated(session, case, "callback"):
                    raise RatingRefused(case.status)  # one 回访 result per closure
                self._keep_rating(session, case, score, note, "callback", now)
            add_event(session, case, actor, "callback", None, None, now, t(
                "event.callback_reached" if reached else "event.callback_missed",
                score=score if score is not None else "-", note=note or "-"))

        return await self.locked(number, work)

    @staticmethod
    async def _rated(session: AsyncSession, case: Case, source: str) -> bool:
        """Whether this closure of the case has a rating from `source` already."""
        return (await session.execute(select(CaseRating.id).where(
            CaseRating.case_id == case.id, CaseRating.closure == case.reopen_count,
            CaseRating.source == source))).first() is not None

    @staticmethod
    def _keep_rating(session: AsyncSession, case: Case, score: int, note: str, source: str,
                     now: datetime) -> None:
        case.rating = score  # the latest; the history is in case_ratings
        session.add(CaseRating(case_id=case.id, closure=case.reopen_count, at=now,
                               score=score, note=mask_personal(clean(note))[:500],
                               source=source))

    async def merge(self, source_number: str, target_number: str, actor: str,
                    reason: str) -> Case:
        """Staff found two cases to be one problem: the source's reports join the target (its
        reporters follow the target from now on) and the source is closed as merged."""
        if source_number == target_number:
            raise ValueError("a case cannot be merged into itself")
        now = self.ctx.clock()
        async with self.ctx.db.serialised(), self.ctx.db.session() as session, session.begin():
            cases = {c.number: c for c in (await session.execute(
                select(Case).where(Case.number.in_([source_number, target_number]))
                .order_by(Case.id).with_for_update())).scalars()}
            source, target = cases.get(source_number), cases.get(target_number)
            if source is None or target is None:
                raise CaseNotFound(source_number if source is None else target_number)
            for case in (source, target):
                if case.status not in OPEN:
                    raise TransitionError(case.status, "merged")
            followers = [(source.reporter_id, source.channel, source.text, source.address,
                          source.lat, source.lon, source.grid_code)]
            moved = (await session.execute(select(AttachedReport).where(
                AttachedReport.case_id == source.id))).scalars().all()
            followers += [(a.reporter_id, a.channel, a.text, a.address, a.lat, a.lon,
                           a.grid_code) for a in moved]
            for row in moved:
                await session.delete(row)
            await session.flush()
            known = {target.reporter_id} | set((await session.execute(
                select(AttachedReport.reporter_id).where(
                    AttachedReport.case_id == target.id))).scalars())
            for reporter_id, channel, text, address, lat, lon, grid_code in followers:
                if reporter_id in known:
                    continue
                known.add(reporter_id)
                session.add(AttachedReport(
                    case_id=target.id, reporter_id=reporter_id, channel=channel, text=text,
                    address=address, lat=lat, lon=lon, grid_code=grid_code, created_at=now))
            await session.execute(update(CaseMedia).where(CaseMedia.case_id == source.id)
                                  .values(case_id=target.id))
            source.merged_into = target.number
            add_event(session, target, actor, "merge", None, None, now,
                      t("event.merged_from", number=source.number, reason=reason))
            await self.move(session, source, Status.REJECTED, actor,
                            t("event.merged_into", number=target.number, reason=reason), now,
                            tell_reporter=False)
            values = {"number": source.number, "target": target.number}
            say: dict[str, Any] = {"key": "citizen.merged", "values": values}
            text = t("citizen.merged", **values)
            for channel, reporter_id in [(f[1], f[0]) for f in followers
                                         if f[0] is not None]:
                self.notices.add(session, source, Recipient.reporter(channel, reporter_id),
                                 text, now, kind="citizen", say=say)
        return target

    async def split(self, number: str, attached_id: int, actor: str, reason: str) -> Case:
        """Staff found an attached report to be a different problem: it becomes a case of its
        own (filed and dispatched as usual), and its reporter follows that case instead."""
        async with self.ctx.db.session() as session:
            row = (await session.execute(
                select(AttachedReport, Case.item_code, Reporter)
                .join(Case, Case.id == AttachedReport.case_id)
                .join(Reporter, Reporter.id == AttachedReport.reporter_id)
                .where(Case.number == number, AttachedReport.id == attached_id))).first()
        if row is None:
            raise CaseNotFound(f"{number}/{attached_id}")
        attached, item_code, reporter = row
        filing = await self.filing.file(
            CaseDraft(text=attached.text, item_code=item_code, grid_code=attached.grid_code,
                      lat=attached.lat, lon=attached.lon, address=attached.address),
            ReporterRef(reporter.channel, reporter.external_id), attach_duplicates=False)
        # Filed first, unlinked second: if this last step failed the reporter would follow
        # both cases, which is harmless; the other order could lose the report.
        now = self.ctx.clock()
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(delete(AttachedReport).where(
                AttachedReport.id == attached_id))
            old = (await session.execute(select(Case).where(Case.number == number))).scalar_one()
            add_event(session, old, actor, "split", None, None, now,
                       t("event.split_off", number=filing.case.number, reason=reason))
        return filing.case
