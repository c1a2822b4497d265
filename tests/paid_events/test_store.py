"""The store: migrations match the models, constraints back the guarantees, no float columns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from paid_events.store import Base, EventRow, Store, migrate
from sqlalchemy.exc import IntegrityError


def test_migrations_produce_exactly_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrating_twice_is_a_no_op(store: Store) -> None:
    migrate(store.engine)
    with store.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0001"


def test_no_float_columns() -> None:
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            assert not isinstance(column.type, sa.Float), f"{table.name}.{column.name}"


def test_the_database_refuses_overselling_even_past_the_service(store: Store) -> None:
    with store.transaction() as s:
        s.add(
            EventRow(
                id="e1",
                organizer="o",
                title="t",
                kind="one_off",
                currency="EUR",
                price_minor=100,
                capacity=1,
                seats_taken=1,
                gateways="g",
                status="active",
                created_at=datetime(2026, 11, 25, tzinfo=UTC),
            )
        )
    with pytest.raises(IntegrityError), store.transaction() as s:
        s.execute(sa.update(EventRow).values(seats_taken=2))


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="timezone-aware"), store.transaction() as s:
        s.add(
            EventRow(
                id="e2",
                organizer="o",
                title="t",
                kind="one_off",
                currency="EUR",
                price_minor=100,
                capacity=1,
                seats_taken=0,
                gateways="g",
                status="active",
                created_at=datetime(2026, 11, 25),  # noqa: DTZ001
            )
        )
