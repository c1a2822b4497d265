"""Fixtures: the same tests run on SQLite (a file per test) and on PostgreSQL (a schema per session).

PostgreSQL is found at ``GATEWAY_TEST_PG_URL`` (default the local trust-auth server); when it is
absent the PostgreSQL half of every test is skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from paid_events import config as pe_config
from paid_events.config import PlatformConfig
from paid_events.service import PaidEvents
from paid_events.store import Base, Store

import gateway_core.fake
from gateway_core import GatewayManager
from gateway_core.fake import FakeGateway

PG_URL = os.environ.get("GATEWAY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLES = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))


class Clock:
    """A settable UTC clock for the service."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def timestamp(self) -> float:
        """The same instant as POSIX seconds, the fake gateway's clock format."""
        return self.now.timestamp()

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[tuple[str, str]]:
    """A fresh schema on the test PostgreSQL, migrated once, dropped at the end of the session."""
    try:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at GATEWAY_TEST_PG_URL ({type(exc).__name__})")
    schema = f"pe_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        Store.open(PG_URL, schema=schema).close()  # runs the migrations once
        yield PG_URL, schema
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store.open(f"sqlite:///{tmp_path / 'events.db'}", pool_size=None)
    else:
        url, schema = request.getfixturevalue("pg_schema")
        opened = Store.open(url, schema=schema, run_migrations=False, pool_size=40)
        with opened.engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {TABLES}"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def platform() -> PlatformConfig:
    return pe_config.load()[0]


@pytest.fixture
def manager() -> GatewayManager:
    """The example configuration's two fake gateways: "stripe-like" (with HUF/BGN/RON) and "paypal-like"."""
    return GatewayManager(pe_config.load()[1], plugins=[gateway_core.fake], load_entry_points=False)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def on_clock(manager: GatewayManager, clock: Clock) -> GatewayManager:
    """``manager`` and its fake gateways reading ``clock``.

    One clock for the service, the core and the fake provider: a checkout's expiry (set from the
    service's clock), the core's check of it and the fake's "now" (which decides whether it has
    expired) must agree, whatever the wall-clock date the suite runs on.
    """
    manager.clock = clock
    for name in manager.gateway_names():
        fake = manager.gateway_object(name)
        if isinstance(fake, FakeGateway):
            fake.clock = clock.timestamp
    return manager


@pytest.fixture
def service(store: Store, manager: GatewayManager, platform: PlatformConfig, clock: Clock) -> PaidEvents:
    return PaidEvents(store, on_clock(manager, clock), platform, clock=clock)
