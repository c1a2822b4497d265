"""Confirmed registrations per second on PostgreSQL with 16 concurrent workers (a figure, not a test).

Each registration is the whole path: hold a seat, open a checkout on the fake gateway, the payer
pays, the signed webhooks are verified and processed (confirmation + outbox message). Run::

    uv run python benchmarks/bench_paid_events.py [--registrations 2000] [--workers 16]

PostgreSQL is taken from GATEWAY_TEST_PG_URL (default the local trust-auth server) in a schema of
its own, dropped afterwards; without PostgreSQL the benchmark says so and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import structlog
from paid_events import config as pe_config
from paid_events.service import PaidEvents
from paid_events.store import RegistrationRow, Store

import gateway_core.fake
from gateway_core import GatewayManager, Money
from gateway_core.fake import FakeGateway

PG_URL = os.environ.get("GATEWAY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    try:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        print(f"skipped: PostgreSQL not reachable at GATEWAY_TEST_PG_URL ({type(exc).__name__})")
        return
    schema = f"pe_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        store = Store.open(PG_URL, schema=schema, pool_size=args.workers + 4)
        platform, deployment = pe_config.load()
        manager = GatewayManager(deployment, plugins=[gateway_core.fake], load_entry_points=False)
        service = PaidEvents(store, manager, platform)
        fake = manager.gateway_object("stripe-like")
        assert isinstance(fake, FakeGateway)
        event_id = service.create_event(
            organizer="bench",
            title="Benchmark webinar",
            kind="one_off",
            price=Money.of("20", "EUR"),
            capacity=args.registrations,
            gateways=["stripe-like"],
            starts_at=datetime.now(UTC) + timedelta(days=30),
        ).id

        def register(i: int) -> None:
            result = service.checkout(event_id, f"p{i}@example.com")
            fake.complete_checkout(result.checkout_id or "")
            for delivery in fake.drain_webhooks():
                service.handle_webhook("stripe-like", delivery.headers, delivery.body)

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            list(pool.map(register, range(args.registrations)))
        for delivery in fake.drain_webhooks():
            service.handle_webhook("stripe-like", delivery.headers, delivery.body)
        elapsed = time.perf_counter() - started
        with store.transaction() as s:
            confirmed = s.scalar(
                sa.select(sa.func.count()).select_from(RegistrationRow).where(RegistrationRow.status == "confirmed")
            )
        store.close()
        print(
            f"paid_events on PostgreSQL, {args.workers} workers: {confirmed} confirmed registrations "
            f"in {elapsed:.2f} s = {(confirmed or 0) / elapsed:.0f} confirmed registrations/s"
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
