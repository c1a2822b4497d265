"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 08:03:59.793146
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import paid_events.store

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "pe_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organizer", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("early_price_minor", sa.BigInteger(), nullable=True),
        sa.Column("early_from", paid_events.store.UTCDateTime(), nullable=True),
        sa.Column("early_until", paid_events.store.UTCDateTime(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("seats_taken", sa.Integer(), nullable=False),
        sa.Column("gateways", sa.String(length=400), nullable=False),
        sa.Column("starts_at", paid_events.store.UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", paid_events.store.UTCDateTime(), nullable=False),
        sa.CheckConstraint("capacity > 0", name=op.f("ck_pe_events_capacity_positive")),
        sa.CheckConstraint("price_minor > 0", name=op.f("ck_pe_events_price_positive")),
        sa.CheckConstraint(
            "seats_taken >= 0 AND seats_taken <= capacity", name=op.f("ck_pe_events_seats_within_capacity")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pe_events")),
    )
    op.create_table(
        "pe_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("registration_id", sa.String(length=36), nullable=True),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=True),
        sa.Column("created_at", paid_events.store.UTCDateTime(), nullable=False),
        sa.Column("sent_at", paid_events.store.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pe_outbox")),
    )
    with op.batch_alter_table("pe_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pe_outbox_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pe_outbox_registration_id"), ["registration_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pe_outbox_sent_at"), ["sent_at"], unique=False)

    op.create_table(
        "pe_processed_webhooks",
        sa.Column("gateway", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("registration_id", sa.String(length=36), nullable=True),
        sa.Column("processed_at", paid_events.store.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("gateway", "event_id", name=op.f("pk_pe_processed_webhooks")),
    )
    op.create_table(
        "pe_promo_codes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("percent", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("expires_at", paid_events.store.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)", name=op.f("ck_pe_promo_codes_uses_within_limit")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["pe_events.id"], name=op.f("fk_pe_promo_codes_event_id_pe_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pe_promo_codes")),
        sa.UniqueConstraint("event_id", "code", name="uq_pe_promo_codes_event_code"),
    )
    with op.batch_alter_table("pe_promo_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pe_promo_codes_event_id"), ["event_id"], unique=False)

    op.create_table(
        "pe_registrations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("promo_id", sa.String(length=36), nullable=True),
        sa.Column("gateway", sa.String(length=40), nullable=True),
        sa.Column("operation_id", sa.String(length=80), nullable=True),
        sa.Column("checkout_id", sa.String(length=255), nullable=True),
        sa.Column("payment_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_url", sa.String(length=1000), nullable=True),
        sa.Column("hold_expires_at", paid_events.store.UTCDateTime(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("refund_state", sa.String(length=16), nullable=False),
        sa.Column("refund_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", paid_events.store.UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", paid_events.store.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "price_minor >= 0 AND fee_minor >= 0", name=op.f("ck_pe_registrations_amounts_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["pe_events.id"], name=op.f("fk_pe_registrations_event_id_pe_events"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["promo_id"],
            ["pe_promo_codes.id"],
            name=op.f("fk_pe_registrations_promo_id_pe_promo_codes"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pe_registrations")),
        sa.UniqueConstraint("operation_id", name=op.f("uq_pe_registrations_operation_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_pe_registrations_token_hash")),
    )
    with op.batch_alter_table("pe_registrations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pe_registrations_checkout_id"), ["checkout_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pe_registrations_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pe_registrations_payment_id"), ["payment_id"], unique=False)
        batch_op.create_index(
            "uq_pe_registrations_live_email",
            ["event_id", "email"],
            unique=True,
            sqlite_where=sa.text("status IN ('pending', 'confirmed')"),
            postgresql_where=sa.text("status IN ('pending', 'confirmed')"),
        )


def downgrade() -> None:
    with op.batch_alter_table("pe_registrations", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_pe_registrations_live_email",
            sqlite_where=sa.text("status IN ('pending', 'confirmed')"),
            postgresql_where=sa.text("status IN ('pending', 'confirmed')"),
        )
        batch_op.drop_index(batch_op.f("ix_pe_registrations_payment_id"))
        batch_op.drop_index(batch_op.f("ix_pe_registrations_event_id"))
        batch_op.drop_index(batch_op.f("ix_pe_registrations_checkout_id"))

    op.drop_table("pe_registrations")
    with op.batch_alter_table("pe_promo_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pe_promo_codes_event_id"))

    op.drop_table("pe_promo_codes")
    op.drop_table("pe_processed_webhooks")
    with op.batch_alter_table("pe_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pe_outbox_sent_at"))
        batch_op.drop_index(batch_op.f("ix_pe_outbox_registration_id"))
        batch_op.drop_index(batch_op.f("ix_pe_outbox_event_id"))

    op.drop_table("pe_outbox")
    op.drop_table("pe_events")
