"""Console accounts: roles, argon2 password hashes, and which cases each account may see.

The scope strings are the ones workers use (`department:NAME`, `grid:CODE`, `street:CODE`,
`district:CODE`), read the same way `Teams.may_act` reads them, so a grid leader in the
console sees exactly the cases a grid leader could act on in chat.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.exc import IntegrityError

from bot.config import ConsoleConfig
from bot.grids import GridMap
from bot.models import Case, StaffUser, Worker
from bot.scope import AREA_KINDS, Scope
from bot.storage import Database

ROLES = ("operator", "dispatcher", "supervisor", "department", "grid_leader")
# Roles that see every case; the others are narrowed by their scope.
ALL_CASES_ROLES = ("operator", "dispatcher", "supervisor")
# Roles that may reveal a caller's phone number (each reveal is audited by the console).
PHONE_ROLES = ("operator", "supervisor")
USERNAME_MAX = 64
PASSWORD_MIN = 8

# The process's hasher: argon2-cffi's defaults (config [console] password_* has the same)
# until use_password_cost sets the configured cost (build_services and `gridbot users` do).
_hasher = PasswordHasher()
_dummy_hash = ""


def use_password_cost(console: ConsoleConfig) -> None:
    """Hash new passwords (and the unknown-user stand-in) at the configured argon2 cost."""
    global _hasher, _dummy_hash
    wanted = (console.password_time_cost, console.password_memory_kib,
              console.password_parallelism)
    if wanted != (_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism):
        _hasher = PasswordHasher(time_cost=wanted[0], memory_cost=wanted[1],
                                 parallelism=wanted[2])
        _dummy_hash = ""


def dummy_hash() -> str:
    """Verified against when the username is unknown, so a miss costs as much as a wrong
    password and response times do not tell which usernames exist."""
    global _dummy_hash
    if not _dummy_hash:
        _dummy_hash = _hasher.hash("gridbot-no-such-user")
    return _dummy_hash


def needs_rehash(stored: str) -> bool:
    """The hash was made with other parameters than the configured ones."""
    return _hasher.check_needs_rehash(stored)


class Account(Protocol):
    """What the scope rules read of an account: a StaffUser row, or the console's signed-in
    session (adapters.console.auth.StaffSession) standing in for it."""

    @property
    def id(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def active(self) -> bool: ...


class CasePlace(Protocol):
    """What `may_see` reads of a case: a loaded Case, or a change notice's fields."""

    @property
    def department(self) -> str: ...
    @property
    def grid_code(self) -> str: ...


class StaffError(ValueError):
    """Bad account input; the message says which field and why."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_scope(role: str, scope: str, grids: GridMap | None = None) -> None:
    """department needs department:NAME; grid_leader a grid/street/district; the all-case
    roles take no scope (an empty one)."""
    if role not in ROLES:
        raise StaffError(f"role '{role}' must be one of {', '.join(ROLES)}")
    kind, ref = Scope.parse(scope)
    if role in ALL_CASES_ROLES:
        if scope:
            raise StaffError(f"role '{role}' sees every case and takes no scope")
        return
    if role == "department":
        if kind != "department" or not ref.strip():
            raise StaffError("role 'department' needs --scope department:NAME")
        return
    if kind not in AREA_KINDS or not ref:
        raise StaffError("role 'grid_leader' needs --scope grid:CODE, street:CODE or "
                         "district:CODE")
    if grids is not None:
        area = grids.get(ref)
        if area is None or area.level != kind:
            raise StaffError(f"no {kind} with code {ref}")


async def add_user(db: Database, username: str, password: str, role: str, scope: str = "",
                   display_name: str = "", grids: GridMap | None = None) -> StaffUser:
    username = username.strip()
    if not username or len(username) > USERNAME_MAX or any(c.isspace() for c in username):
        raise StaffError(f"username must be 1–{USERNAME_MAX} characters without spaces")
    if len(password) < PASSWORD_MIN:
        raise StaffError(f"password must be at least {PASSWORD_MIN} characters")
    check_scope(role, scope, grids)
    user = StaffUser(username=username, display_name=display_name.strip() or username,
                     role=role, scope=scope, password_hash=hash_password(password),
                     active=True, created_at=datetime.now(UTC))
    try:
        async with db.session() as session, session.begin():
            session.add(user)
    except IntegrityError:
        raise StaffError(f"user '{username}' already exists") from None
    return user


async def check_login(db: Database, username: str, password: str) -> StaffUser | None:
    """The active account when the password matches, else None. Rehashes old parameters and
    records the login time."""
    async with db.session() as session, session.begin():
        user = (await session.execute(
            select(StaffUser).where(StaffUser.username == username.strip()))).scalar()
        if user is None or not user.active:
            _verify(dummy_hash(), password)
            return None
        if not _verify(user.password_hash, password):
            return None
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        user.last_login_at = datetime.now(UTC)
    return user


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def get_user(db: Database, user_id: int) -> StaffUser | None:
    async with db.session() as session:
        return await session.get(StaffUser, user_id)


async def list_users(db: Database) -> list[StaffUser]:
    async with db.session() as session:
        return list((await session.execute(
            select(StaffUser).order_by(StaffUser.username))).scalars())


async def set_active(db: Database, username: str, active: bool) -> bool:
    async with db.session() as session, session.begin():
        user = (await session.execute(
            select(StaffUser).where(StaffUser.username == username))).scalar()
        if user is None:
            return False
        user.active = active
    return True


def _grid_codes_under(ref: str, grids: GridMap) -> list[str]:
    """Grid cells at or below the area `ref`, by the same ancestor walk as Teams.may_act."""
    return [g.code for g in grids.grids if ref in {a.code for a in grids.ancestors(g.code)}]


def visible_cases(user: Account, grids: GridMap) -> ColumnElement[bool]:
    """A WHERE clause on Case: what this account may see (and so act on)."""
    if not user.active or user.role not in ROLES:
        return false()
    if user.role in ALL_CASES_ROLES:
        return true()
    kind, ref = Scope.parse(user.scope)
    if user.role == "department":
        return Case.department == ref if kind == "department" and ref else false()
    if kind in AREA_KINDS and ref:
        codes = _grid_codes_under(ref, grids)
        # A grid code the map does not know (yet) still matches a grid scope exactly.
        return Case.grid_code.in_(codes or [ref]) if kind != "grid" else Case.grid_code == ref
    return false()


def may_see(user: Account, case: CasePlace, grids: GridMap) -> bool:
    """The same rule as `visible_cases`, for one loaded case."""
    if not user.active or user.role not in ROLES:
        return False
    if user.role in ALL_CASES_ROLES:
        return True
    kind, ref = Scope.parse(user.scope)
    if user.role == "department":
        return kind == "department" and bool(ref) and case.department == ref
    if kind == "grid":
        return case.grid_code == ref
    return bool(ref) and ref in {a.code for a in grids.ancestors(case.grid_code)}


def may_reveal_phone(user: Account) -> bool:
    return user.role in PHONE_ROLES


# Console role → the worker role WorkerActions and Teams know, so the console reuses their
# checks instead of copying them.
_WORKER_ROLE = {"operator": "dispatcher", "dispatcher": "dispatcher",
                "supervisor": "supervisor", "department": "department_staff",
                "grid_leader": "grid_leader"}


def as_worker(user: Account, case: Case, grids: GridMap) -> Worker:
    """A transient (never saved) Worker standing for this account on `case`. The all-case
    roles get the case's top area as scope: they were already checked with `may_see`."""
    scope = user.scope
    if user.role in ALL_CASES_ROLES:
        chain = grids.ancestors(case.grid_code)
        scope = f"{chain[-1].level}:{chain[-1].code}" if chain else f"grid:{case.grid_code}"
    return Worker(id=user.id, name=user.display_name or user.username,
                  role=_WORKER_ROLE[user.role], scope=scope, channel="console",
                  external_id=user.username, active=True)
