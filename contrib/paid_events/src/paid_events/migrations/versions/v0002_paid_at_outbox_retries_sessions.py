"""paid_at, case-insensitive e-mail key, checkout expiry, refund states, outbox retries, series sessions

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 12:00:00

* ``pe_registrations.paid_at``: when the provider confirmed the payment. Existing rows that were
  confirmed with a payment id are taken as paid at their confirmation (the only evidence 0001 kept).
* ``pe_registrations.email_key``: the whole address lowercased; the live-registration unique index
  moves to it. Two live registrations that differed only in case (possible under 0001) keep
  distinct keys (the later one's key gets ``#<registration id>``) so the upgrade never fails or
  changes a status; the organizer sees both.
* ``pe_registrations.checkout_expires_at``, ``refund_attempt``, ``refund_requested_at``.
* ``pe_outbox.attempts``, ``last_error``, ``next_attempt_at``, ``failed_at``, ``claim_id``,
  ``claimed_until``.
* ``pe_sessions``: the dates of a permanent event (a series).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import paid_events.store

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_LIVE = sa.text("status IN ('pending', 'confirmed')")


def upgrade() -> None:
    op.create_table(
        "pe_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("starts_at", paid_events.store.UTCDateTime(), nullable=False),
        sa.Column("created_at", paid_events.store.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["pe_events.id"], name=op.f("fk_pe_sessions_event_id_pe_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pe_sessions")),
    )
    with op.batch_alter_table("pe_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pe_sessions_event_id"), ["event_id"], unique=False)

    with op.batch_alter_table("pe_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("last_error", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("next_attempt_at", paid_events.store.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("failed_at", paid_events.store.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("claim_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", paid_events.store.UTCDateTime(), nullable=True))

    with op.batch_alter_table("pe_registrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_key", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("checkout_expires_at", paid_events.store.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("paid_at", paid_events.store.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("refund_attempt", sa.Integer(), server_default=sa.text("1"), nullable=False))
        batch_op.add_column(sa.Column("refund_requested_at", paid_events.store.UTCDateTime(), nullable=True))
        batch_op.drop_index("uq_pe_registrations_live_email", sqlite_where=_LIVE, postgresql_where=_LIVE)

    _backfill()

    with op.batch_alter_table("pe_registrations", schema=None) as batch_op:
        batch_op.alter_column("email_key", existing_type=sa.String(length=254), nullable=False)
        batch_op.create_index(
            "uq_pe_registrations_live_email",
            ["event_id", "email_key"],
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )


def _backfill() -> None:
    regs = sa.table(
        "pe_registrations",
        sa.column("id", sa.String()),
        sa.column("event_id", sa.String()),
        sa.column("email", sa.String()),
        sa.column("email_key", sa.String()),
        sa.column("status", sa.String()),
        sa.column("price_minor", sa.BigInteger()),
        sa.column("payment_id", sa.String()),
        sa.column("created_at", paid_events.store.UTCDateTime()),
        sa.column("confirmed_at", paid_events.store.UTCDateTime()),
        sa.column("paid_at", paid_events.store.UTCDateTime()),
    )
    conn = op.get_bind()
    conn.execute(sa.update(regs).values(email_key=sa.func.lower(regs.c.email)))
    seen: set[tuple[str, str]] = set()
    live = conn.execute(
        sa.select(regs.c.id, regs.c.event_id, regs.c.email_key)
        .where(regs.c.status.in_(("pending", "confirmed")))
        .order_by(regs.c.created_at, regs.c.id)
    ).all()
    for reg_id, event_id, key in live:
        if (event_id, key) in seen:
            conn.execute(sa.update(regs).where(regs.c.id == reg_id).values(email_key=f"{key}#{reg_id}"[:254]))
        seen.add((event_id, key))
    conn.execute(
        sa.update(regs)
        .where(regs.c.payment_id.is_not(None), regs.c.confirmed_at.is_not(None), regs.c.price_minor > 0)
        .values(paid_at=regs.c.confirmed_at)
    )


def downgrade() -> None:
    with op.batch_alter_table("pe_registrations", schema=None) as batch_op:
        batch_op.drop_index("uq_pe_registrations_live_email", sqlite_where=_LIVE, postgresql_where=_LIVE)
        batch_op.drop_column("refund_requested_at")
        batch_op.drop_column("refund_attempt")
        batch_op.drop_column("paid_at")
        batch_op.drop_column("checkout_expires_at")
        batch_op.drop_column("email_key")
        batch_op.create_index(
            "uq_pe_registrations_live_email",
            ["event_id", "email"],
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )
    with op.batch_alter_table("pe_outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claim_id")
        batch_op.drop_column("failed_at")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("last_error")
        batch_op.drop_column("attempts")
    with op.batch_alter_table("pe_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pe_sessions_event_id"))
    op.drop_table("pe_sessions")
