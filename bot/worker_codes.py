"""One-time codes that bind a worker's account in another channel (the mini-program's openid)
to a registered worker: `gridbot wechat worker-code WORKER_ID` makes one, the worker types it
in the mini-program, and that openid becomes the same worker there (name, role, scope).

Kept in the bind_codes table beside the group chats' codes (restarts keep them; several
servers share them), told apart by the scope they carry: `worker:ID`. Teams.bind never takes
one of these for a group chat, nor this module a group's code."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from bot.models import BindCode, Worker
from bot.storage import Database
from bot.teams import BIND_CODE_TTL_S, Teams

WORKER_SCOPE = "worker:"


class WorkerCodeError(ValueError):
    """No such active worker to make a code for."""


async def new_worker_code(db: Database, worker_id: int, now: datetime) -> str:
    async with db.session() as session, session.begin():
        worker = await session.get(Worker, worker_id)
        if worker is None or not worker.active:
            raise WorkerCodeError(f"no active worker with id {worker_id}")
        await session.execute(delete(BindCode).where(BindCode.expires_at < now))
        code = secrets.token_hex(4).upper()
        session.add(BindCode(code=code, scope=f"{WORKER_SCOPE}{worker_id}",
                             expires_at=now + timedelta(seconds=BIND_CODE_TTL_S)))
    return code


async def redeem_worker_code(teams: Teams, code: str, channel: str, external_id: str,
                             now: datetime) -> Worker | None:
    """The worker the code was made for, now also known as `external_id` on `channel`; None
    when the code is wrong, used or expired. The code works once, even when two try it."""
    async with teams.db.session() as session, session.begin():
        taken = (await session.execute(
            delete(BindCode).where(BindCode.code == code.strip().upper()[:16],
                                   BindCode.scope.startswith(WORKER_SCOPE),
                                   BindCode.expires_at > now)
            .returning(BindCode.scope))).scalar()
        if taken is None:
            return None
        ref = taken.removeprefix(WORKER_SCOPE)
        staff = (await session.execute(select(Worker).where(
            Worker.id == int(ref), Worker.active.is_(True)))).scalar() if ref.isdigit() else None
    if staff is None:
        return None
    return await teams.add_worker(staff.name, staff.role, staff.scope, channel, external_id,
                                  now)
