"""Who works cases and where their team talks: workers with scopes, group chats bound to grids."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis.asyncio as aioredis
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.grids import GridMap
from bot.models import BindCode, Case, GroupBinding, Worker
from bot.scope import SCOPE_KINDS, Scope
from bot.storage import Database

ROLES = ("grid_worker", "grid_leader", "street_staff", "department_staff", "dispatcher",
         "supervisor")
BIND_CODE_TTL_S = 24 * 3600


class TeamsError(ValueError):
    pass


class Teams:
    def __init__(self, db: Database, grids: GridMap, redis: aioredis.Redis,
                 departments: frozenset[str] | None = None) -> None:
        self.db = db
        self.grids = grids
        self.redis = redis
        # The departments the catalogue names: a case or worker cannot be sent to another.
        self.departments = departments

    # -- workers ----------------------------------------------------------------------------

    def check_scope(self, scope: str) -> None:
        kind, ref = Scope.parse(scope)
        if kind not in SCOPE_KINDS or not ref:
            raise TeamsError(f"scope '{scope}' must be grid:CODE, street:CODE, district:CODE "
                             "or department:NAME")
        if kind == "department":
            if self.departments is not None and ref not in self.departments:
                raise TeamsError(f"no department named {ref} in the catalogue")
            return
        area = self.grids.get(ref)
        if area is None or area.level != kind:
            raise TeamsError(f"no {kind} with code {ref}")

    async def add_worker(self, name: str, role: str, scope: str, channel: str,
                         external_id: str, now: datetime) -> Worker:
        if role not in ROLES:
            raise TeamsError(f"role '{role}' must be one of {', '.join(ROLES)}")
        self.check_scope(scope)
        async with self.db.session() as session, session.begin():
            existing = (await session.execute(select(Worker).where(
                Worker.channel == channel, Worker.external_id == external_id))).scalar()
            if existing is not None:
                existing.name, existing.role, existing.scope = name, role, scope
                existing.active = True
                return existing
            worker = Worker(name=name, role=role, scope=scope, channel=channel,
                            external_id=external_id, active=True, created_at=now)
            session.add(worker)
        return worker

    async def worker(self, channel: str, external_id: str) -> Worker | None:
        async with self.db.single() as session:
            return (await session.execute(select(Worker).where(
                Worker.channel == channel, Worker.external_id == external_id,
                Worker.active.is_(True)))).scalar()

    def may_act(self, worker: Worker | None, case: Case) -> bool:
        """Workers act on cases in their grid, or anywhere below their street or district;
        department staff on their department's cases."""
        if worker is None or not worker.active:
            return False
        kind, ref = Scope.parse(worker.scope)
        if kind == "department":
            return case.department == ref
        return ref in {a.code for a in self.grids.ancestors(case.grid_code)}

    # -- group chats ------------------------------------------------------------------------

    def target_scope(self, target: str) -> Scope:
        """A grid code, street:CODE or department:NAME, checked: what a chat may bind to."""
        scope = Scope.parse(target) if ":" in target else Scope.grid(target)
        if scope.kind not in SCOPE_KINDS:
            raise TeamsError(f"'{target}' must be a grid code, street:CODE, district:CODE or "
                             "department:NAME")
        self.check_scope(str(scope))
        return scope

    async def bind_chat(self, target: str, channel: str, chat_id: str, now: datetime) -> str:
        """Bind a chat directly (a WeCom group robot, by its key, from the CLI): what a
        `/bind CODE` does in a channel that has no such command. Returns the binding."""
        bound_to = binding_key(self.target_scope(target))
        async with self.db.session() as session, session.begin():
            await session.execute(delete(GroupBinding).where(
                GroupBinding.channel == channel, GroupBinding.chat_id == chat_id))
            session.add(GroupBinding(channel=channel, chat_id=chat_id, grid_code=bound_to,
                                     bound_at=now))
        return bound_to

    async def new_bind_code(self, target: str, now: datetime | None = None) -> str:
        """A one-time code a team types as `/bind CODE` in its group: `target` is a grid
        code, or street:CODE or department:NAME for a street's or a department's chat
        (督办 and escalations then reach them there). Kept in the database: the CLI and the
        server share it on every set-up, and restarts keep it."""
        scope = self.target_scope(target)
        now = now or datetime.now(UTC)
        code = secrets.token_hex(4).upper()
        async with self.db.session() as session, session.begin():
            await session.execute(delete(BindCode).where(BindCode.expires_at < now))
            session.add(BindCode(code=code, scope=str(scope),
                                 expires_at=now + timedelta(seconds=BIND_CODE_TTL_S)))
        return code

    async def bind(self, code: str, channel: str, chat_id: str, now: datetime) -> str | None:
        """Bind the chat to the code's grid, street or department; the code works once.
        Returns what it was bound to: the grid code, or street:CODE / department:NAME."""
        async with self.db.session() as session, session.begin():
            # DELETE … RETURNING takes the code once even when two chats try it at once.
            taken = (await session.execute(
                delete(BindCode).where(BindCode.code == code.strip().upper()[:16],
                                       BindCode.expires_at > now,
                                       # (a worker's own code, bot/worker_codes.py: no chat's)
                                       ~BindCode.scope.startswith("worker:"))
                .returning(BindCode.scope))).scalar()
            if taken is None:
                return None
            bound_to = binding_key(Scope.parse(taken))
            await session.execute(delete(GroupBinding).where(
                GroupBinding.channel == channel, GroupBinding.chat_id == chat_id))
            session.add(GroupBinding(channel=channel, chat_id=chat_id, grid_code=bound_to,
                                     bound_at=now))
        return bound_to

    async def unbind(self, channel: str, chat_id: str) -> bool:
        async with self.db.session() as session, session.begin():
            # A DELETE without RETURNING always gives a CursorResult (it has rowcount);
            # SQLAlchemy types execute() as the generic Result.
            result = cast(CursorResult[Any], await session.execute(delete(GroupBinding).where(
                GroupBinding.channel == channel, GroupBinding.chat_id == chat_id)))
        return bool(result.rowcount)

    async def grid_of_group(self, channel: str, chat_id: str) -> str | None:
        async with self.db.session() as session:
            bound = (await session.execute(select(GroupBinding.grid_code).where(
                GroupBinding.channel == channel, GroupBinding.chat_id == chat_id))).scalar()
        if bound:
            return bound if ":" not in bound else None  # a street's or department's chat
        wanted = f"{channel}:{chat_id}"
        return next((g.code for g in self.grids.grids if g.group_chat == wanted), None)

    async def room_of(self, session: AsyncSession, scope: Scope) -> tuple[str, str] | None:
        """(channel, chat id) of the chat bound to a grid, street or department, if any."""
        if scope.kind == "grid":
            return await self.group_of(session, scope.ref)
        bound = (await session.execute(
            select(GroupBinding.channel, GroupBinding.chat_id)
            .where(GroupBinding.grid_code == binding_key(scope))
            .order_by(GroupBinding.id.desc()))).first()
        return (bound[0], bound[1]) if bound is not None else None

    async def group_of(self, session: AsyncSession, grid_code: str) -> tuple[str, str] | None:
        """(channel, chat id) of the grid's team room: a binding made in chat wins over the
        grid file's `group_chat`."""
        bound = (await session.execute(
            select(GroupBinding.channel, GroupBinding.chat_id)
            .where(GroupBinding.grid_code == grid_code).order_by(GroupBinding.id.desc())
        )).first()
        if bound is not None:
            return bound[0], bound[1]
        area = self.grids.get(grid_code)
        if area is None or not area.group_chat:
            return None
        channel, _, chat = area.group_chat.partition(":")
        return channel, chat


def binding_key(scope: Scope) -> str:
    """group_bindings.grid_code: a grid's code (as it always was), or the whole scope for a
    street's or department's chat — never equal to a grid code, which has no colon."""
    return scope.ref if scope.kind == "grid" else str(scope)
