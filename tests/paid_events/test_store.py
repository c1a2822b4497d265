"""The store: migrations match the models, constraints back the guarantees, no float columns."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from paid_events.store import MIGRATIONS, Base, EventRow, RegistrationRow, Store, create_engine, migrate
from sqlalchemy.exc import IntegrityError


def test_migrations_produce_exactly_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrating_twice_is_a_no_op(store: Store) -> None:
    migrate(store.engine)
    with store.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0002"


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


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on an empty database (SQLite file, or a fresh PostgreSQL schema)."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    url, schema = request.getfixturevalue("pg_schema")
    upgrade_schema = f"{schema}_upgrade"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{upgrade_schema}"'))
    engine = create_engine(url, schema=upgrade_schema)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{upgrade_schema}" CASCADE'))
        admin.dispose()


def _upgrade(engine: sa.Engine, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def test_upgrading_a_0001_store_keeps_its_rows_and_fills_the_new_columns(empty_engine: sa.Engine) -> None:
    _upgrade(empty_engine, "0001")
    created = datetime(2026, 11, 20, tzinfo=UTC)
    confirmed = datetime(2026, 11, 21, tzinfo=UTC)
    with empty_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO pe_events (id, organizer, title, kind, currency, price_minor, capacity, seats_taken,"
                " gateways, status, created_at) VALUES ('e1', 'o', 't', 'one_off', 'EUR', 2000, 10, 3, 'g', 'active', :c)"
            ),
            {"c": created.replace(tzinfo=None) if empty_engine.dialect.name == "sqlite" else created},
        )
        for reg_id, email, status, payment, when in (
            ("r1", "ann@x.com", "confirmed", "pi_1", confirmed),  # paid through the gateway
            ("r2", "Ann@x.com", "pending", "pi_2", None),  # the same person in 0001's eyes: two live rows
            ("r3", "bob@x.com", "rejected", "pi_3", None),  # rejected before paying: not paid
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO pe_registrations (id, event_id, email, status, currency, price_minor, fee_minor,"
                    " payment_id, refund_state, created_at, confirmed_at)"
                    " VALUES (:id, 'e1', :email, :status, 'EUR', 2000, 100, :payment, 'none', :created, :confirmed)"
                ),
                {
                    "id": reg_id,
                    "email": email,
                    "status": status,
                    "payment": payment,
                    "created": created.replace(tzinfo=None) if empty_engine.dialect.name == "sqlite" else created,
                    "confirmed": (when.replace(tzinfo=None) if empty_engine.dialect.name == "sqlite" else when)
                    if when
                    else None,
                },
            )
    _upgrade(empty_engine, "head")
    store = Store(empty_engine)
    with store.transaction() as s:
        rows = {r.id: r for r in s.scalars(sa.select(RegistrationRow))}
    assert rows["r1"].email_key == "ann@x.com"
    assert rows["r2"].email_key == "ann@x.com#r2"  # kept distinct: the upgrade changes no status
    assert rows["r2"].email == "Ann@x.com"
    assert rows["r1"].paid_at == confirmed
    assert rows["r2"].paid_at is None
    assert rows["r3"].paid_at is None
    assert {r.refund_attempt for r in rows.values()} == {1}
    with empty_engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
