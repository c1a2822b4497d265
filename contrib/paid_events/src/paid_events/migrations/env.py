"""Alembic environment of paid_events: run programmatically by :func:`paid_events.store.migrate`."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from paid_events.store import Base

_LOCK_ID = 7_114_019_651  # pg_advisory_xact_lock key: one migrator at a time across processes


def _run(connection: sa.Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("paid_events migrations need a connection or sqlalchemy.url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _run(conn)


_main()
