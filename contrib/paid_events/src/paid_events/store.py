"""The store: SQLAlchemy 2 models, engine set-up for SQLite and PostgreSQL, Alembic on start-up.

Amounts are integer minor units (``BigInteger``) next to their currency; there is no float
column. Guarantees that matter are also constraints: ``0 <= seats_taken <= capacity`` on events,
``uses <= max_uses`` on promo codes, one live registration per e-mail and event (a partial unique
index on the whole address lowercased), one row per processed webhook ``(gateway, event_id)``, one
operation id per payment attempt.

SQLite serializes writers: every transaction starts with ``BEGIN IMMEDIATE`` and waits on a busy
timeout, so a conditional ``UPDATE`` there is as safe as on PostgreSQL, where it takes the row lock.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

__all__ = [
    "Base",
    "EventRow",
    "OutboxRow",
    "ProcessedWebhookRow",
    "PromoCodeRow",
    "RegistrationRow",
    "SessionRow",
    "Store",
    "UTCDateTime",
    "hash_token",
]

MIGRATIONS = Path(__file__).parent / "migrations"
LIVE_STATUSES = ("pending", "confirmed")
#: The largest count an ``Integer`` column holds on every supported database (PostgreSQL's
#: ``integer``); a capacity or use limit above it is refused as input, never sent to the database.
MAX_COUNT = 2**31 - 1


def hash_token(token: str) -> str:
    """What ``pe_registrations.token_hash`` holds for an access token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive, in UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("datetimes stored by paid_events must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=_NAMING)


class EventRow(Base):
    __tablename__ = "pe_events"
    __table_args__ = (
        sa.CheckConstraint("seats_taken >= 0 AND seats_taken <= capacity", name="seats_within_capacity"),
        sa.CheckConstraint("capacity > 0", name="capacity_positive"),
        sa.CheckConstraint("price_minor > 0", name="price_positive"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    organizer: Mapped[str] = mapped_column(sa.String(200))
    title: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(16))
    currency: Mapped[str] = mapped_column(sa.String(3))
    price_minor: Mapped[int] = mapped_column(sa.BigInteger)
    early_price_minor: Mapped[int | None] = mapped_column(sa.BigInteger)
    early_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    early_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(sa.Integer)
    #: Seats held by an open checkout plus seats sold; moved only by conditional UPDATEs.
    seats_taken: Mapped[int] = mapped_column(sa.Integer, default=0)
    gateways: Mapped[str] = mapped_column(sa.String(400))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def gateway_names(self) -> tuple[str, ...]:
        return tuple(g for g in self.gateways.split(",") if g)


class PromoCodeRow(Base):
    __tablename__ = "pe_promo_codes"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "code", name="uq_pe_promo_codes_event_code"),
        sa.CheckConstraint("uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)", name="uses_within_limit"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("pe_events.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(sa.String(32))
    kind: Mapped[str] = mapped_column(sa.String(8))
    percent: Mapped[Any | None] = mapped_column(sa.Numeric(5, 2))
    amount_minor: Mapped[int | None] = mapped_column(sa.BigInteger)
    max_uses: Mapped[int | None] = mapped_column(sa.Integer)
    uses: Mapped[int] = mapped_column(sa.Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RegistrationRow(Base):
    """One participant's registration, and the one payment attempt behind it."""

    __tablename__ = "pe_registrations"
    __table_args__ = (
        sa.Index(
            "uq_pe_registrations_live_email",
            "event_id",
            "email_key",
            unique=True,
            sqlite_where=sa.text("status IN ('pending', 'confirmed')"),
            postgresql_where=sa.text("status IN ('pending', 'confirmed')"),
        ),
        sa.CheckConstraint("price_minor >= 0 AND fee_minor >= 0", name="amounts_not_negative"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("pe_events.id", ondelete="CASCADE"), index=True)
    #: The address as the participant typed it (domain lowercased): what messages are sent to.
    email: Mapped[str] = mapped_column(sa.String(254))
    #: The whole address lowercased: one live registration per ``email_key`` and event.
    email_key: Mapped[str] = mapped_column(sa.String(254))
    #: pending (seat held, awaiting payment), confirmed, rejected (by the organizer; a payment
    #: that lands afterwards is recorded, ``paid_at``, and the status stays: no ticket, the
    #: organizer refunds), expired, failed, refunded, paid_no_seat (paid after the hold lapsed and
    #: the event filled, or after the event was cancelled: no ticket; the organizer refunds).
    status: Mapped[str] = mapped_column(sa.String(16))
    currency: Mapped[str] = mapped_column(sa.String(3))
    price_minor: Mapped[int] = mapped_column(sa.BigInteger)
    fee_minor: Mapped[int] = mapped_column(sa.BigInteger)
    promo_id: Mapped[str | None] = mapped_column(sa.ForeignKey("pe_promo_codes.id", ondelete="SET NULL"))
    gateway: Mapped[str | None] = mapped_column(sa.String(40))
    #: The operation id the provider's idempotency key is derived from; written before the call.
    operation_id: Mapped[str | None] = mapped_column(sa.String(80), unique=True)
    checkout_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    payment_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    checkout_url: Mapped[str | None] = mapped_column(sa.String(1000))
    #: When the seat hold lapses (the platform's ``hold_minutes``).
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The expiry sent to the provider with the checkout (fitted into the gateway's declared
    #: window), ``None`` for a gateway that takes none; stored so a retry rebuilds the same request.
    checkout_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the provider confirmed the payment (webhook or status check). Only such a
    #: registration has money to refund; a ``payment_id`` alone is the checkout's intended payment.
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: SHA-256 of the access token; the token itself is never stored once sent.
    token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    #: none, requested (sent to the provider; outcome not known yet), pending (the provider
    #: accepted it and has not finished), refunded, failed.
    refund_state: Mapped[str] = mapped_column(sa.String(16), default="none")
    refund_id: Mapped[str | None] = mapped_column(sa.String(255))
    #: Which refund attempt the idempotency key names (a failed refund is retried under a new key).
    refund_attempt: Mapped[int] = mapped_column(sa.Integer, default=1, server_default=sa.text("1"))
    #: Set while one caller's refund request is in flight (a claim); cleared when it returns.
    refund_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProcessedWebhookRow(Base):
    """A webhook event already processed; the primary key makes a second delivery a no-op."""

    __tablename__ = "pe_processed_webhooks"

    gateway: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(40))
    registration_id: Mapped[str | None] = mapped_column(sa.String(36))
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SessionRow(Base):
    """One session (date) of a permanent event (a series); one ticket admits to every session."""

    __tablename__ = "pe_sessions"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("pe_events.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxRow(Base):
    """A message to send. ``body`` may hold ``{access_token}``; ``secret`` holds it until sent, then is cleared.

    A drainer claims a row (``claim_id``, ``claimed_until``) in a short transaction, sends outside
    any transaction, then records the outcome; a failure counts in ``attempts``, keeps
    ``last_error`` and waits until ``next_attempt_at``; after the last allowed attempt the message
    is ``failed_at`` (permanently failed) and its token erased.
    """

    __tablename__ = "pe_outbox"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(24))
    event_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    registration_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    recipient: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    secret: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default=sa.text("0"))
    last_error: Mapped[str | None] = mapped_column(sa.String(300))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_id: Mapped[str | None] = mapped_column(sa.String(36))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


def _sqlite_engine(url: sa.URL, **kwargs: Any) -> Engine:
    memory = url.database in (None, "", ":memory:")
    engine = sa.create_engine(
        url,
        connect_args={"timeout": 60, "check_same_thread": False},
        poolclass=StaticPool if memory else None,
        **kwargs,
    )

    @sa_event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: object) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, open transactions (BEGIN IMMEDIATE below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @sa_event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_engine(url: str | sa.URL, *, pool_size: int | None = None, schema: str | None = None) -> Engine:
    """An engine for ``url``: SQLite (file or memory) or PostgreSQL (``postgresql+psycopg://``).

    ``schema`` puts every table of a PostgreSQL database in that schema (``search_path``).
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if pool_size is not None:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = 4
    if schema is not None:
        kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
    return sa.create_engine(parsed, **kwargs)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (a no-op when it is current)."""
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config  # noqa: PLC0415

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


class Store:
    """An engine plus a session factory; :meth:`transaction` is the one way the service writes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(
        cls,
        url: str | sa.URL,
        *,
        run_migrations: bool = True,
        pool_size: int | None = None,
        schema: str | None = None,
    ) -> Store:
        """Connect to ``url`` and (by default) apply pending migrations."""
        engine = create_engine(url, pool_size=pool_size, schema=schema)
        if run_migrations:
            migrate(engine)
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any exception."""
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()
