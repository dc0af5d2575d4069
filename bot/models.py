"""Database tables (SQLAlchemy 2). Times are stored as UTC and always come back timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """SQLite forgets time zones; store naive UTC everywhere and hand back aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class AreaRow(Base):
    """Grid hierarchy as imported (`gridbot grids import`); geometry is GeoJSON text."""

    __tablename__ = "areas"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))
    parent: Mapped[str | None] = mapped_column(String(32), nullable=True)
    geometry: Mapped[str] = mapped_column(Text)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Reporter(Base):
    """A citizen as a channel knows them. Identity never leaves through public APIs."""

    __tablename__ = "reporters"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_reporter", "reporter_id"),
        Index("ix_cases_status", "status"),
        Index("ix_cases_grid", "grid_code"),
        # The duplicate lookup: same item, latitude within the radius (then longitude, time).
        Index("ix_cases_nearby", "item_code", "lat"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    item_code: Mapped[str] = mapped_column(String(16))
    item_name: Mapped[str] = mapped_column(String(64))
    big_class: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(100))
    handling_level: Mapped[str] = mapped_column(String(16))
    current_level: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str] = mapped_column(String(140), default="")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    grid_code: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    # Who found it: citizen (a complaint), patrol (a grid worker on patrol, 巡查), hotline
    # (12345, typed in by an operator).
    source: Mapped[str] = mapped_column(String(16), default="citizen")
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("reporters.id"), nullable=True)
    classifier_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    response_due: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    handling_due: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    merged_into: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Not a column: whether the person a reporter query ran for is the first reporter.
    viewer_owns = True

    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", cascade="all, delete-orphan"
    )
    media: Mapped[list[CaseMedia]] = relationship(
        back_populates="case", order_by="CaseMedia.id", cascade="all, delete-orphan"
    )


class CaseEvent(Base):
    """The audit trail: one row per transition or note, never updated."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(140))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    case: Mapped[Case] = relationship(back_populates="events")


class CaseMedia(Base):
    """Evidence attached to a case: a channel media reference or a stored file path."""

    __tablename__ = "case_media"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(500))
    added_by: Mapped[str] = mapped_column(String(140))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    case: Mapped[Case] = relationship(back_populates="media")


class OutboxMessage(Base):
    """A notification written in the same transaction as the change it announces."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")


class CaseCounter(Base):
    """Per-day sequence behind human-friendly case numbers (20261122-0007)."""

    __tablename__ = "case_counters"
    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class TrainingExample(Base):
    """A labelled text from a confirmed or corrected case: feeds `gridbot train --from-cases`."""

    __tablename__ = "training_examples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    item_code: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    suggested_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseTimer(Base):
    """A reminder or escalation due at a moment: kept in the database so restarts lose none."""

    __tablename__ = "case_timers"
    __table_args__ = (Index("ix_timers_due", "done_at", "due_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # remind | escalate
    level: Mapped[str] = mapped_column(String(16))  # the level the case was at when set
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), default="")  # fired | cancelled


class AttachedReport(Base):
    """A later report of the same problem, attached to an open case: its reporter follows
    the case (gets every update) and staff can split it off again."""

    __tablename__ = "attached_reports"
    __table_args__ = (UniqueConstraint("case_id", "reporter_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"))
    channel: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    grid_code: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FiledReport(Base):
    """A client's report id (channel:user:id) and the case it filed or joined. Inserted in
    the filing's own transaction, so the id means "filed": a failed filing leaves it free
    for the retry, and a retry of a filed report finds its case."""

    __tablename__ = "filed_reports"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseRating(Base):
    """Every rating a case was given, kept: the reporter's in chat and the operator's 回访
    (follow-up call). `closure` counts the case's closures (0 = the first; a reopened case
    is closed again as 1): satisfaction counts the first rating of each closure."""

    __tablename__ = "case_ratings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    closure: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    score: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16))  # chat | callback (回访)


class Patrol(Base):
    """A grid worker's patrol (巡查): started and ended in chat, its track from the
    locations they share. Distance, coverage of the grid and leaving it are worked out when
    it ends. A worker's positions are never public."""

    __tablename__ = "patrols"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id"), index=True)
    grid_code: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    distance_m: Mapped[float] = mapped_column(Float, default=0.0)
    covered_share: Mapped[float] = mapped_column(Float, default=0.0)
    left_grid: Mapped[bool] = mapped_column(Boolean, default=False)
    # The grid's planned places (its duty list) the track passed, by name, when it ended.
    places: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    points: Mapped[list[PatrolPoint]] = relationship(order_by="PatrolPoint.at")


class PatrolPoint(Base):
    __tablename__ = "patrol_points"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrols.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    lat: Mapped[float] = mapped_column(Float)  # WGS-84
    lon: Mapped[float] = mapped_column(Float)


class PatrolPlan(Base):
    """A grid's duty list (巡查计划): how often it is patrolled (every working day, or once a
    working week) and the places a patrol should pass (schools, markets, sites from the
    gazetteer, kept with their points so a changed gazetteer does not move them)."""

    __tablename__ = "patrol_plans"
    grid_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    every: Mapped[str] = mapped_column(String(16))  # workday | week
    places: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AreaFollow(Base):
    """A person following an area (「关注 东华里」): a short daily note of the cases filed and
    closed within `radius_m` of the place. Who follows is a reporter row, so no channel
    identity is stored here or in the notes' outbox rows."""

    __tablename__ = "area_follows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    place: Mapped[str] = mapped_column(String(100))  # the place's name, as found
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    noted_until: Mapped[datetime] = mapped_column(UTCDateTime)  # cases after this are news


class ContactWindow(Base):
    """When a person last wrote on a channel: WeChat lets an account message them freely for
    48 hours after. In the database because a restart must not close every window."""

    __tablename__ = "contact_windows"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_inbound_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BindCode(Base):
    """A one-time code a team types as `/bind CODE` in its group chat. `scope` is what the
    chat is bound to (grid:CODE today)."""

    __tablename__ = "bind_codes"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope: Mapped[str] = mapped_column(String(140))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Worker(Base):
    """Someone who works cases: a grid worker or leader, street or department staff.

    `scope` says which cases they may act on: grid:CODE, street:CODE, district:CODE or
    department:NAME. Their channel account is how a button press or command is matched."""

    __tablename__ = "workers"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(140))
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GroupBinding(Base):
    """A group chat bound to a grid (Telegram `/bind CODE`, a WeCom robot): its team's room."""

    __tablename__ = "group_bindings"
    __table_args__ = (UniqueConstraint("channel", "chat_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(200))
    grid_code: Mapped[str] = mapped_column(String(32), index=True)
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffUser(Base):
    """A console account: hotline operator, dispatcher, supervisor, department user or
    grid leader. `scope` narrows what they see (department:NAME, grid:CODE, street:CODE)."""

    __tablename__ = "staff_users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(140), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class StaffAudit(Base):
    """Every staff action in the console, never updated."""

    __tablename__ = "staff_audit"
    __table_args__ = (Index("ix_staff_audit_at", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    username: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(48))
    target: Mapped[str] = mapped_column(String(140), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str] = mapped_column(String(64), default="")


class ApiKey(Base):
    """A key for the HTTP and Open311 APIs. Only its SHA-256 is stored; `prefix` names it.
    `scopes`: what it may do, comma-separated (open311, chat, suggest, admin = all)."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    scopes: Mapped[str] = mapped_column(String(64), default="open311",
                                        server_default="open311")


class Open311Token(Base):
    """GeoReport v2 `tokens/{id}`: a request accepted before it had a case number."""

    __tablename__ = "open311_tokens"
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_number: Mapped[str | None] = mapped_column(String(32), nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SmsConsent(Base):
    """A hotline caller who gave a mobile number and agreed to hear of their case by SMS.
    Keyed like a contact window (the reporter's opaque channel id): the number itself stays
    in reporters.phone, read for sending only by the SMS channel."""

    __tablename__ = "sms_consents"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    consented_at: Mapped[datetime] = mapped_column(UTCDateTime)
